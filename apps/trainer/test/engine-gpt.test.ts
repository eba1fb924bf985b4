import { MemoryLedger, type OptimizerPlugin, TrainingEngine } from '@kstar/core';
import { createGPT, resolveConfig } from '@kstar/gpt';
import { inPlaceGradAccumulator, selectBackend } from '@kstar/kernels';
import { adamw } from '@kstar/optim-adamw';
import { lomo } from '@kstar/optim-lomo';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { segmentPlan } from '../src/index.ts';
import { relError, tokenBatch } from './engine-helpers.ts';

// The `tiny` preset with the byte-level vocabulary, on small batches so the suite stays fast on 2 cores.
const config = resolveConfig('tiny', { vocabSize: 256 });
const B = 2;
const T = 32;

const batch = (seed: number) => tokenBatch(B, T, seed);

beforeAll(async () => {
  await selectBackend('wasm');
});

/** The tiny GPT in segmented mode, one block a segment, with a ledger; each segment's (and each variable's) bytes. */
function segmentedEngine(seed: number, optimizer: OptimizerPlugin) {
  const model = createGPT(config, { seed });
  const ledger = new MemoryLedger();
  const segments = segmentPlan(config.nLayer, 1);
  const engine = new TrainingEngine(model, {
    optimizer,
    mode: 'segmented',
    segments,
    ledger,
    gradAccumulator: inPlaceGradAccumulator,
  });
  const bytes = (n: string) => 4 * model.variables.get(n)!.size;
  const segmentBytes = segments.map((seg) => {
    const names = new Set(seg.flatMap((i) => model.stages[i]!.params));
    return [...names].reduce((s, n) => s + bytes(n), 0);
  });
  return { model, ledger, segments, engine, bytes, segmentBytes };
}

describe('engine on the tiny GPT (wasm)', () => {
  it.each([1, 2])(
    'segmented gradients equal full-graph gradients with %i block(s) per segment',
    async (k) => {
      const model = createGPT(config, { seed: 1 });
      const b = batch(3);
      const full = new TrainingEngine(model, { optimizer: adamw(), mode: 'full' });
      const seg = new TrainingEngine(model, {
        optimizer: adamw(),
        mode: 'segmented',
        segments: segmentPlan(config.nLayer, k),
      });
      const a = await full.computeGradients(b);
      const s = await seg.computeGradients(b);
      expect(Math.abs(s.loss - a.loss) / a.loss).toBeLessThan(1e-5);
      expect([...s.grads.keys()].sort()).toEqual([...a.grads.keys()].sort());
      for (const [name, g] of a.grads)
        expect(relError(s.grads.get(name)!, g), name).toBeLessThanOrEqual(1e-4);
      tf.dispose([...a.grads.values(), ...s.grads.values(), b.inputs, b.targets]);
      full.dispose();
      seg.dispose();
      model.dispose();
    },
  );

  it.each(['full', 'segmented'] as const)('leaks no tensor over three steps (%s)', async (mode) => {
    const model = createGPT(config, { seed: 2 });
    const engine = new TrainingEngine(model, {
      optimizer: adamw(),
      mode,
      gradAccumulator: inPlaceGradAccumulator,
    });
    const b = batch(5);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await engine.trainStep(b);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([b.inputs, b.targets]);
    engine.dispose();
    model.dispose();
  });

  it('with gradient release, gradient bytes stay within the largest segment plus the embedding', async () => {
    const { model, ledger, engine, bytes, segmentBytes } = segmentedEngine(4, adamw());
    const b = batch(7);
    const r = await engine.trainStep(b);
    const all = [...model.variables.keys()].reduce((s, n) => s + bytes(n), 0);
    expect(r.gradPeakBytes).toBeLessThanOrEqual(Math.max(...segmentBytes) + bytes('wte'));
    expect(r.gradPeakBytes).toBeLessThan(all);
    expect(r.gradPeakBytes).toBe(engine.predictGradPeakBytes());
    tf.dispose([b.inputs, b.targets]);
    engine.dispose();
    model.dispose();
    ledger.detach();
  });

  it('a tiny LOMO step holds no optimizer state and its measured gradient peak ≤ the largest segment (tied wte)', async () => {
    const { model, ledger, engine, segmentBytes } = segmentedEngine(6, lomo({ lr: 0.05, weightDecay: 0.1 }));
    expect(engine.partialGradients).toBe(true);
    const b = batch(9);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) {
      const r = await engine.trainStep(b);
      expect(r.optimizerStateBytes).toBe(0);
      expect(r.gradPeakBytes).toBeGreaterThan(0);
      expect(r.gradPeakBytes).toBeLessThanOrEqual(Math.max(...segmentBytes));
      expect(r.gradPeakBytes).toBe(engine.predictGradPeakBytes());
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([b.inputs, b.targets]);
    engine.dispose();
    model.dispose();
    ledger.detach();
  });
});
