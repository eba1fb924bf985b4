import { selectBackend } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createGPT, GPT_PRESETS, type GPTModel, predictActivationBreakdown } from '../src/index.ts';
import { batchOf } from './helpers.ts';
import { measurePeak } from './measure.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** The engine's segmented step (forward keeps segment inputs; backward recomputes each under valueAndGrads). */
function segmentedStep(
  model: GPTModel,
  batch: { inputs: tf.Tensor; targets: tf.Tensor },
  segments: number[][],
) {
  const stages = model.stages;
  const run = (s: number, x: tf.Tensor, params: Record<string, tf.Tensor>) => {
    let y = x;
    for (const i of segments[s]!) y = stages[i]!.forward(y, params, batch);
    return y;
  };
  const all = model.paramRecord();
  const inputs: tf.Tensor[] = [batch.inputs];
  for (let s = 0; s < segments.length - 1; s++) {
    const x = inputs[s]!;
    inputs.push(tf.tidy(() => run(s, x, all)));
  }
  let dy: tf.Tensor | undefined;
  for (let s = segments.length - 1; s >= 0; s--) {
    const x = inputs[s]!;
    const names = [...new Set(segments[s]!.flatMap((i) => stages[i]!.params))];
    const vars = names.map((n) => model.variables.get(n)!);
    const wrtX = x.dtype === 'float32';
    const f = (...args: tf.Tensor[]) => {
      const ps = wrtX ? args.slice(1) : args;
      return run(s, wrtX ? args[0]! : x, Object.fromEntries(names.map((n, k) => [n, ps[k]!])));
    };
    const { value, grads } = tf.valueAndGrads(f)(wrtX ? [x, ...vars] : vars, dy);
    value.dispose();
    dy?.dispose();
    dy = wrtX ? grads[0] : undefined;
    if (s > 0) x.dispose();
    // The engine hands parameter gradients to the optimizer here (and stops counting them as activations).
    tf.dispose(wrtX ? grads.slice(1) : grads);
  }
  dy?.dispose();
}

/** The tiny GPT (seed 0), a batch of 2 × 64 tokens and the live tensor count before the measurement. */
function tinySetup() {
  const cfg = GPT_PRESETS.tiny;
  const model = createGPT(cfg, { seed: 0 });
  const B = 2;
  const T = 64;
  const batch = batchOf(B, T, cfg.vocabSize);
  return { cfg, model, B, T, batch, start: tf.memory().numTensors };
}

/** The measured peak of unique buffers of one full-graph forward and backward (the gradients freed after). */
function fullStepPeak(model: ReturnType<typeof createGPT>, batch: ReturnType<typeof batchOf>) {
  const full = measurePeak(() => tf.variableGrads(() => model.loss(batch), [...model.variables.values()]));
  tf.dispose([full.result.value, ...Object.values(full.result.grads)]);
  return { peakBytes: full.peakBytes };
}

describe('predictActivationBytes', () => {
  it('matches the measured peak of unique buffers for tiny (full and segmented)', () => {
    const { cfg, model, B, T, batch, start } = tinySetup();
    const full = fullStepPeak(model, batch);
    const pf = predictActivationBreakdown(cfg, { batch: B, seq: T, mode: 'full' });
    const rf = pf.total / full.peakBytes;
    const L = cfg.nLayer;
    const segs = Array.from({ length: L + 2 }, (_, i) => [i]);
    const seg = measurePeak(() => segmentedStep(model, batch, segs));
    const ps = predictActivationBreakdown(cfg, { batch: B, seq: T, mode: 'segmented', segments: segs });
    const rs = ps.total / seg.peakBytes;
    console.log(
      `tiny B=${B} T=${T}: full predicted ${pf.total} measured ${full.peakBytes} ratio ${rf.toFixed(4)}; ` +
        `segmented (per stage) predicted ${ps.total} measured ${seg.peakBytes} ratio ${rs.toFixed(4)}`,
    );
    expect(Math.abs(rf - 1)).toBeLessThan(0.05);
    expect(Math.abs(rs - 1)).toBeLessThan(0.05);
    expect(model.predictActivationBytes({ batch: B, seq: T, mode: 'full' })).toBe(pf.total);
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([batch.inputs, batch.targets]);
    model.dispose();
  });

  it('matches the measured peak on wasm, where every saved tensor is a copy (full and segmented)', async () => {
    await selectBackend('wasm');
    try {
      const { cfg, model, B, T, batch, start } = tinySetup();
      const full = fullStepPeak(model, batch);
      const pf = predictActivationBreakdown(cfg, { batch: B, seq: T, mode: 'full', backend: 'wasm' });
      const lines = [
        `full predicted ${pf.total} measured ${full.peakBytes} ratio ${(pf.total / full.peakBytes).toFixed(4)}`,
      ];
      expect(Math.abs(pf.total / full.peakBytes - 1)).toBeLessThan(0.1);
      expect(pf.peakPhase).toBe('backward');
      const L = cfg.nLayer;
      for (const segs of [Array.from({ length: L + 2 }, (_, i) => [i]), [[0], [1, 2], [3]]]) {
        const seg = measurePeak(() => segmentedStep(model, batch, segs));
        const ps = predictActivationBreakdown(cfg, {
          batch: B,
          seq: T,
          mode: 'segmented',
          segments: segs,
          backend: 'wasm',
        });
        const r = ps.total / seg.peakBytes;
        lines.push(
          `segmented ${JSON.stringify(segs)} predicted ${ps.total} measured ${seg.peakBytes} ratio ${r.toFixed(4)}`,
        );
        expect(Math.abs(r - 1)).toBeLessThan(0.1);
      }
      console.log(`wasm tiny B=${B} T=${T}: ${lines.join('; ')}`);
      expect(model.predictActivationBytes({ batch: B, seq: T, mode: 'full', backend: 'wasm' })).toBe(
        pf.total,
      );
      expect(tf.memory().numTensors).toBe(start);
      tf.dispose([batch.inputs, batch.targets]);
      model.dispose();
    } finally {
      await tf.setBackend('cpu');
    }
  });

  it('predicts webgpu (ops attention) and tensorflow like cpu, webgpu fused below, and wasm above them', () => {
    const cfg = GPT_PRESETS.tiny;
    for (const mode of ['full', 'segmented'] as const) {
      const cpu = predictActivationBreakdown(cfg, { batch: 4, seq: 64, mode, attention: 'ops' });
      expect(
        predictActivationBreakdown(cfg, { batch: 4, seq: 64, mode, backend: 'cpu', attention: 'ops' }),
      ).toEqual(cpu);
      expect(
        predictActivationBreakdown(cfg, { batch: 4, seq: 64, mode, backend: 'webgpu', attention: 'ops' }),
      ).toEqual(cpu);
      const fused = predictActivationBreakdown(cfg, {
        batch: 4,
        seq: 64,
        mode,
        backend: 'webgpu',
        attention: 'fused',
      });
      expect(fused.total).toBeLessThan(cpu.total);
      expect(predictActivationBreakdown(cfg, { batch: 4, seq: 64, mode, backend: 'tensorflow' })).toEqual(
        cpu,
      );
      const wasm = predictActivationBreakdown(cfg, { batch: 4, seq: 64, mode, backend: 'wasm' });
      expect(wasm.total / cpu.total).toBeGreaterThan(1.5);
      expect(wasm.total / cpu.total).toBeLessThan(1.7);
    }
    expect(() =>
      predictActivationBreakdown(cfg, { batch: 1, seq: 8, mode: 'full', backend: 'webgl' as 'cpu' }),
    ).toThrow(/backend 'webgl'/);
  });

  it('grows with the attention term and segmenting lowers it', () => {
    const cfg = GPT_PRESETS.small;
    const full = predictActivationBreakdown(cfg, { batch: 8, seq: 256, mode: 'full' });
    const seg = predictActivationBreakdown(cfg, { batch: 8, seq: 256, mode: 'segmented' });
    expect(seg.total).toBeLessThan(full.total / 2);
    expect(() => predictActivationBreakdown(cfg, { batch: 8, seq: 512, mode: 'full' })).toThrow(/seq/);
    expect(() =>
      predictActivationBreakdown(cfg, { batch: 1, seq: 8, mode: 'segmented', segments: [[0], [2]] }),
    ).toThrow(/segments/);
  });

  it('takes one saved-input size per segment: equal sizes predict like one number, and only earlier ones count', () => {
    const cfg = GPT_PRESETS.small; // 8 stages
    const segments = [[0], [1], [2], [3], [4], [5], [6], [7]];
    const opts = { batch: 2, seq: 64, mode: 'segmented' as const, segments };
    const ND4 = 4 * 2 * 64 * cfg.nEmbd;
    const one = predictActivationBreakdown(cfg, { ...opts, savedInputBytes: ND4 / 2 });
    const list = predictActivationBreakdown(cfg, { ...opts, savedInputBytes: segments.map(() => ND4 / 2) });
    expect(list).toEqual(one);
    // Halving segment 1's saved input only: every segment after it holds ND4/2 less while it is recomputed.
    const mixed = predictActivationBreakdown(cfg, {
      ...opts,
      savedInputBytes: segments.map((_, s) => (s === 1 ? ND4 / 2 : ND4)),
    });
    const plain = predictActivationBreakdown(cfg, opts);
    expect(mixed.peakSegment).toBe(plain.peakSegment);
    expect(plain.savedInputs - mixed.savedInputs).toBe(plain.peakSegment > 1 ? ND4 / 2 : 0);
    expect(() => predictActivationBreakdown(cfg, { ...opts, savedInputBytes: [0, -1] })).toThrow(
      /savedInputBytes \[0,-1\] is invalid/,
    );
  });
});
