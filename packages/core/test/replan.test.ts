import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { InputError, PluginConflictError, type SavedTensorCodec, TrainingEngine } from '../src/index.ts';
import { momentum, randomBatch, toyModel } from './toy.ts';

const V = 40;
const D = 16;
const B = 3;
const T = 5;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A codec that keeps a copy and counts what it stored (the second, independent path for a saved input). */
function countingCodec(): SavedTensorCodec & { encoded: number } {
  const c = {
    encoded: 0,
    encode(x: tf.Tensor) {
      c.encoded++;
      const copy = tf.clone(x);
      return { bytes: 4 * x.size, decode: () => tf.clone(copy), dispose: () => copy.dispose() };
    },
    savedBytes: (shape: readonly number[]) => 4 * shape.reduce((a, b) => a * b, 1),
  };
  return c;
}

describe('TrainingEngine.replan', () => {
  it('continues exactly as an engine built with the final plan from the start', async () => {
    const final = { mode: 'segmented' as const, segments: [[0, 1], [2], [3, 4]] };
    const m1 = toyModel({ vocab: V, dim: D, depth: 3, seed: 5 });
    const m2 = toyModel({ vocab: V, dim: D, depth: 3, seed: 5 });
    // Steps 1-2 run one stage a segment, then the final plan; the reference runs the final plan from step 1. Only
    // parameters and optimizer state carry over the replan.
    const e1 = new TrainingEngine(m1, {
      optimizer: momentum(0.05, 0.9),
      mode: 'segmented',
      segments: [[0], [1], [2], [3], [4]],
    });
    const e2 = new TrainingEngine(m2, { optimizer: momentum(0.05, 0.9), ...final });
    const losses1: number[] = [];
    const losses2: number[] = [];
    for (let s = 0; s < 5; s++) {
      if (s === 2) e1.replan(final);
      const batch = randomBatch(V, B, T, 200 + s);
      losses1.push((await e1.trainStep(batch)).loss);
      losses2.push((await e2.trainStep(batch)).loss);
      tf.dispose([batch.inputs, batch.targets]);
    }
    expect(e1.segments).toEqual(final.segments);
    expect(e1.step).toBe(5);
    // The segment plans compute the same function: the losses agree step for step, to float32 rounding.
    for (let i = 0; i < 5; i++) expect(losses1[i]).toBeCloseTo(losses2[i]!, 6);
    e1.dispose();
    e2.dispose();
    tf.dispose([...m1.variables.values(), ...m2.variables.values()]);
  });

  it('switches between full-graph and segmented mode and leaks no tensor', async () => {
    const model = toyModel({ vocab: V, dim: D, depth: 2, seed: 1 });
    const engine = new TrainingEngine(model, { optimizer: momentum(0.05, 0.9), mode: 'full' });
    const batch = randomBatch(V, B, T, 1);
    await engine.trainStep(batch);
    const before = tf.memory().numTensors;
    engine.replan({ mode: 'segmented' });
    expect(engine.gradientRelease).toBe(true);
    await engine.trainStep(batch);
    engine.replan({ mode: 'full' });
    expect(engine.gradientRelease).toBe(false);
    await engine.trainStep(batch);
    expect(tf.memory().numTensors).toBe(before);
    engine.dispose();
    tf.dispose([batch.inputs, batch.targets, ...model.variables.values()]);
  });

  it('rejects a plan that does not fit the model, keeping the old one', () => {
    const model = toyModel({ vocab: V, dim: D, depth: 2, seed: 1 });
    const engine = new TrainingEngine(model, { optimizer: momentum(0.05, 0.9), mode: 'segmented' });
    expect(() => engine.replan({ mode: 'segmented', segments: [[0, 1]] })).toThrow(InputError);
    expect(engine.segments.length).toBe(4);
    engine.dispose();
    tf.dispose([...model.variables.values()]);
  });
});

describe('segmentCodecs', () => {
  it('stores only the chosen segments through their codec, with unchanged gradients', async () => {
    const model = toyModel({ vocab: V, dim: D, depth: 4, seed: 3 });
    const batch = randomBatch(V, B, T, 11);
    const codec = countingCodec();
    const plain = new TrainingEngine(model, { optimizer: momentum(0.05, 0.9), mode: 'segmented' });
    const coded = new TrainingEngine(model, {
      optimizer: momentum(0.05, 0.9),
      mode: 'segmented',
      segmentCodecs: [undefined, undefined, codec, undefined, codec, undefined],
    });
    const a = await plain.computeGradients(batch);
    const b = await coded.computeGradients(batch);
    // Segment 4's input is stored; the last segment's (5) never is, and segment 2's is.
    expect(codec.encoded).toBe(2);
    expect(b.loss).toBe(a.loss);
    for (const [name, g] of a.grads) expect(b.grads.get(name)!.dataSync()).toEqual(g.dataSync());
    tf.dispose([...a.grads.values(), ...b.grads.values(), batch.inputs, batch.targets]);
    tf.dispose([...model.variables.values()]);
  });

  it('needs one entry per segment, segmented mode, and no strategy codec', () => {
    const model = toyModel({ vocab: V, dim: D, depth: 2, seed: 1 });
    const codec = countingCodec();
    const opt = momentum(0.05, 0.9);
    expect(
      () => new TrainingEngine(model, { optimizer: opt, mode: 'segmented', segmentCodecs: [codec] }),
    ).toThrow(/segmentCodecs has 1 entries for 4 segments/);
    expect(
      () =>
        new TrainingEngine(model, {
          optimizer: opt,
          mode: 'full',
          segmentCodecs: [undefined, codec, undefined, undefined],
        }),
    ).toThrow(InputError);
    const strategy = {
      specificationVersion: 'v1' as const,
      kind: 'activation' as const,
      name: 'store',
      codec,
      describe: () => ({}),
    };
    expect(
      () =>
        new TrainingEngine(model, {
          optimizer: opt,
          mode: 'segmented',
          activations: [strategy],
          segmentCodecs: [undefined, codec, undefined, undefined],
        }),
    ).toThrow(PluginConflictError);
    tf.dispose([...model.variables.values()]);
  });
});

describe('onSegment', () => {
  it('sees every segment, and a throw before the first update leaves the model as it was', async () => {
    const model = toyModel({ vocab: V, dim: D, depth: 2, seed: 4 });
    const seen: string[] = [];
    let failAt: number | undefined = 2;
    const engine = new TrainingEngine(model, {
      optimizer: momentum(0.05, 0.9),
      mode: 'segmented',
      onSegment: (phase, s, step) => {
        seen.push(`${step}${phase[0]}${s}`);
        if (step === failAt && phase === 'forward' && s === 1) throw new Error('injected out of memory');
      },
    });
    const batch = randomBatch(V, B, T, 9);
    await engine.trainStep(batch);
    expect(seen).toEqual(['1f0', '1f1', '1f2', '1b3', '1b2', '1b1', '1b0']);
    const before = [...model.variables.values()].map((v) => v.dataSync().slice());
    const tensors = tf.memory().numTensors;
    await expect(engine.trainStep(batch)).rejects.toThrow('injected out of memory');
    expect(engine.updatesThisStep).toBe(0);
    expect(engine.step).toBe(1);
    expect(tf.memory().numTensors).toBe(tensors);
    for (const [i, v] of [...model.variables.values()].entries()) expect(v.dataSync()).toEqual(before[i]);
    failAt = undefined;
    const r = await engine.trainStep(batch);
    expect(r.step).toBe(2);
    expect(engine.updatesThisStep).toBeGreaterThan(0);
    engine.dispose();
    tf.dispose([batch.inputs, batch.targets, ...model.variables.values()]);
  });
});
