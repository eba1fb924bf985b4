import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainingEngine } from '@kstar/core';
import { createGPT, resolveConfig } from '@kstar/gpt';
import { inPlaceGradAccumulator, selectBackend } from '@kstar/kernels';
import { split24 } from '@kstar/master-split24';
import { adam8bit } from '@kstar/optim-adam8bit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import type { TrainReport } from '../src/index.ts';
import { OPTIMIZERS, runCli, segmentPlan } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-mw-'));

async function trainReport(args: string[]): Promise<TrainReport> {
  const path = join(dir, `r${Math.random().toString(36).slice(2)}.json`);
  const err: string[] = [];
  const io = {
    stdout: { write: () => true },
    stderr: { write: (s: string) => err.push(s) > 0, isTTY: false },
  };
  const code = await runCli(['train', '--report', path, ...args], io);
  expect(code, err.join('')).toBe(0);
  return JSON.parse(readFileSync(path, 'utf8')) as TrainReport;
}

describe('--master-weights split24', () => {
  it('adam8bit + split24 on tiny: optimizerStateBytes ≤ 2.2 B/param, paramBytes ≤ 3.05 B/param, measured', async () => {
    const report = await trainReport(
      '--backend wasm --optimizer adam8bit --master-weights split24 --preset tiny --steps 4 --batch 2 --seq 32 --eval-every 4 --eval-batches 1'.split(
        ' ',
      ),
    );
    const n = report.model.params;
    const m = report.memory;
    expect(report.plugins.map((p) => `${p.kind}:${p.name}`)).toEqual([
      'optimizer:adam8bit',
      'master-weights:split24',
    ]);
    expect(m.paramBytes / n).toBeLessThanOrEqual(3.05);
    expect(m.optimizerStateBytes / n).toBeLessThanOrEqual(2.2);
    // Measured = predicted from the shapes (split 4⌈n/2⌉ + 4⌈n/4⌉; adam8bit incl. float32 state below 4096 elements).
    expect(m.paramBytes).toBe(m.predicted.params);
    expect(m.optimizerStateBytes).toBe(m.predicted['optimizer:adam8bit']);
    expect(report.losses.every(Number.isFinite)).toBe(true);
    expect(report.valLosses).toHaveLength(1);
  });

  it.each(Object.keys(OPTIMIZERS))('%s trains with split24 weights (engine, 2 steps, cpu)', async (name) => {
    await selectBackend('cpu');
    const entry = OPTIMIZERS[name]!;
    const config = resolveConfig('tiny', { vocabSize: 256 });
    const model = createGPT(config, { seed: 3 });
    const mw = split24();
    const mode = entry.requiresMode ?? 'full';
    const engine = new TrainingEngine(model, {
      optimizer: entry.create(entry.defaultLr, {}),
      mode,
      ...(mode === 'segmented' ? { segments: segmentPlan(config.nLayer, 1) } : {}),
      gradAccumulator: inPlaceGradAccumulator,
      masterWeights: mw,
    });
    const before = await mw.getState();
    // Tensors alive beyond the optimizer's state records (lazy-adagrad allocates state rows on first touch).
    const alive = () =>
      tf.memory().numTensors -
      mw.names().reduce((k, n) => k + Object.keys(engine.stateOf(n) ?? {}).length, 0);
    const start = alive();
    for (let s = 0; s < 2; s++) {
      const batch = tf.tidy(() => ({
        inputs: tf.randomUniform([2, 16], 0, 256, 'int32', s),
        targets: tf.randomUniform([2, 16], 0, 256, 'int32', s + 9),
      }));
      const r = entry.trainStep ? await entry.trainStep(engine, batch) : await engine.trainStep(batch);
      expect(Number.isFinite(r.loss)).toBe(true);
      expect(r.paramBytes / model.paramCount).toBeLessThanOrEqual(3.05);
      tf.dispose([batch.inputs, batch.targets]);
    }
    expect(alive()).toBe(start);
    // The weights moved (the update reached the split storage).
    const after = await mw.getState();
    expect(after['h0.mlp.wfc']!.hi.some((x, i) => x !== before['h0.mlp.wfc']!.hi[i])).toBe(true);
    engine.dispose();
    mw.dispose();
    model.dispose();
  });

  it('lomo with global-norm clipping (its second, norm engine) reads the same split weights', async () => {
    const report = await trainReport(
      '--backend cpu --optimizer lomo --optimizer-option clipGradNorm=1 --master-weights split24 --steps 2 --batch 2 --seq 16 --eval-every 0'.split(
        ' ',
      ),
    );
    expect(report.losses.every(Number.isFinite)).toBe(true);
  });
});

describe('save → load → step on cpu (tiny GPT, adam8bit 8-bit state, split24 weights, segmented)', () => {
  it('is bit-identical to the uninterrupted step', async () => {
    await selectBackend('cpu');
    const config = resolveConfig('tiny', { vocabSize: 256 });
    const batches = [1, 2, 3].map((s) =>
      tf.tidy(() => ({
        inputs: tf.randomUniform([2, 16], 0, 256, 'int32', s),
        targets: tf.randomUniform([2, 16], 0, 256, 'int32', s + 100),
      })),
    );
    // Default minQuantizedSize (4096): 8-bit state for the matrices, float32 state for the small tensors.
    const models: ReturnType<typeof createGPT>[] = [];
    const make = (seed: number, mw: ReturnType<typeof split24>, initialStep: number) => {
      const model = createGPT(config, { seed });
      models.push(model);
      return new TrainingEngine(model, {
        optimizer: adam8bit({ lr: 3e-3, weightDecay: 0.01 }),
        mode: 'segmented',
        segments: segmentPlan(config.nLayer, 1),
        gradAccumulator: inPlaceGradAccumulator,
        masterWeights: mw,
        initialStep,
      });
    };
    const mwA = split24();
    const a = make(1, mwA, 0);
    await a.trainStep(batches[0]!);
    await a.trainStep(batches[1]!);
    const saved = await mwA.getState();
    const optState = new Map<string, Array<[string, Float32Array | Int32Array]>>();
    for (const n of mwA.names()) {
      const entries: Array<[string, Float32Array | Int32Array]> = [];
      for (const [k, t] of Object.entries(a.stateOf(n)!))
        entries.push([k, (await t.data()).slice() as Float32Array]);
      optState.set(n, entries);
    }
    expect([...optState.values()].some((e) => e.some(([k]) => k === 'c1'))).toBe(true); // 8-bit state present
    const stepA = await a.trainStep(batches[2]!);

    const mwB = split24();
    mwB.setState(saved);
    const b = make(2, mwB, 2);
    for (const [n, entries] of optState) {
      for (const [k, values] of entries) {
        const v = b.stateOf(n)![k] as tf.Variable;
        const t = tf.tensor(values, v.shape, v.dtype);
        v.assign(t);
        t.dispose(); // refCount 1 again: the fused in-place kernel (not the ops fallback) updates it, as in run A
      }
    }
    const stepB = await b.trainStep(batches[2]!);
    expect(stepB.step).toBe(3);
    expect(stepB.loss).toBe(stepA.loss);
    const sa = await mwA.getState();
    const sb = await mwB.getState();
    for (const n of mwA.names()) {
      expect(Array.from(sb[n]!.hi), n).toEqual(Array.from(sa[n]!.hi));
      expect(Array.from(sb[n]!.lo), n).toEqual(Array.from(sa[n]!.lo));
      for (const [k, t] of Object.entries(a.stateOf(n)!)) {
        expect(Array.from(await b.stateOf(n)![k]!.data()), `${n}/${k}`).toEqual(Array.from(await t.data()));
      }
    }
    for (const e of [a, b]) e.dispose();
    for (const m of models) m.dispose();
    mwA.dispose();
    mwB.dispose();
    tf.dispose(batches.flatMap((x) => [x.inputs, x.targets]));
  });
});
