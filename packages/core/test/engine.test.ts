import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  composePlugins,
  InputError,
  MemoryLedger,
  PluginConflictError,
  TrainingEngine,
  TrainingError,
} from '../src/index.ts';
import { callUntyped, cpuInPlaceAccumulator, momentum, randomBatch, sgd, toyModel } from './toy.ts';

const V = 40;
const D = 16;
const B = 3;
const T = 5;

function maxRelError(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    num = Math.max(num, Math.abs(x[i]! - y[i]!));
    den = Math.max(den, Math.abs(y[i]!));
  }
  return num / Math.max(den, 1e-12);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('segmented engine', () => {
  it.each([
    ['one stage a segment', undefined],
    ['two blocks a segment', [[0], [1, 2], [3, 4], [5]]],
    [
      'embedding with a block, head with a block',
      [
        [0, 1],
        [2, 3],
        [4, 5],
      ],
    ],
  ])('gives the full-graph gradients (%s)', async (_label, segments) => {
    const model = toyModel({ vocab: V, dim: D, depth: 4, seed: 3 });
    const batch = randomBatch(V, B, T, 11);
    const full = new TrainingEngine(model, { optimizer: sgd(0.1), mode: 'full' });
    const seg = new TrainingEngine(model, { optimizer: sgd(0.1), mode: 'segmented', segments });
    const a = await full.computeGradients(batch);
    const b = await seg.computeGradients(batch);
    expect(b.loss).toBeCloseTo(a.loss, 5);
    expect([...b.grads.keys()].sort()).toEqual([...a.grads.keys()].sort());
    for (const [name, g] of a.grads) expect(maxRelError(b.grads.get(name)!, g), name).toBeLessThan(1e-5);
    tf.dispose([...a.grads.values(), ...b.grads.values(), batch.inputs, batch.targets]);
    for (const v of model.variables.values()) v.dispose();
  });

  it('updates identically to full-graph mode over three steps', async () => {
    const m1 = toyModel({ vocab: V, dim: D, depth: 3, seed: 5 });
    const m2 = toyModel({ vocab: V, dim: D, depth: 3, seed: 5 });
    const e1 = new TrainingEngine(m1, { optimizer: momentum(0.05, 0.9), mode: 'full' });
    const e2 = new TrainingEngine(m2, { optimizer: momentum(0.05, 0.9), mode: 'segmented' });
    for (let s = 0; s < 3; s++) {
      const batch = randomBatch(V, B, T, 100 + s);
      const r1 = await e1.trainStep(batch);
      const r2 = await e2.trainStep(batch);
      expect(r2.loss).toBeCloseTo(r1.loss, 5);
      tf.dispose([batch.inputs, batch.targets]);
    }
    for (const [name, v] of m1.variables)
      expect(maxRelError(m2.variables.get(name)!, v), name).toBeLessThan(1e-5);
    e1.dispose();
    e2.dispose();
    tf.dispose([...m1.variables.values(), ...m2.variables.values()]);
  });

  it.each(['full', 'segmented'] as const)('leaks no tensor over three steps (%s)', async (mode) => {
    const model = toyModel({ vocab: V, dim: D, depth: 3, seed: 7 });
    const engine = new TrainingEngine(model, { optimizer: momentum(0.05, 0.9), mode });
    const batch = randomBatch(V, B, T, 1);
    await engine.trainStep(batch); // first step may create lazily-built constants
    const before = tf.memory().numTensors;
    for (let s = 0; s < 3; s++) await engine.trainStep(batch);
    expect(tf.memory().numTensors).toBe(before);
    engine.dispose();
    tf.dispose([batch.inputs, batch.targets, ...model.variables.values()]);
  });

  it('with gradient release, holds at most the largest segment gradients plus the embedding', async () => {
    const model = toyModel({ vocab: 100, dim: 64, depth: 6, seed: 9 });
    const ledger = new MemoryLedger();
    const gradAccumulator = cpuInPlaceAccumulator;
    const release = new TrainingEngine(model, {
      optimizer: sgd(0.01),
      mode: 'segmented',
      ledger,
      gradAccumulator,
    });
    const hold = new TrainingEngine(model, {
      optimizer: sgd(0.01),
      mode: 'segmented',
      gradientRelease: false,
      ledger,
    });
    const allocating = new TrainingEngine(model, { optimizer: sgd(0.01), mode: 'segmented', ledger });
    const batch = randomBatch(100, 2, 4, 3);
    const r = await release.trainStep(batch);
    const h = await hold.trainStep(batch);
    const a = await allocating.trainStep(batch);
    const bytes = (n: string) => model.variables.get(n)!.size * 4;
    const embedding = bytes('E');
    const all = [...model.variables.keys()].reduce((s, n) => s + bytes(n), 0);
    // Largest segment's gradients: here the embed segment's (E); a block's are W + b.
    const largestSegment = Math.max(embedding, bytes('W0') + bytes('b0'));
    // With release, the head's part of the tied embedding's gradient waits for the embed segment, while each block's
    // gradients are updated and freed at once: the peak is the largest segment's gradients plus the embedding's.
    expect(r.gradPeakBytes).toBeLessThanOrEqual(largestSegment + embedding);
    expect(r.gradPeakBytes).toBeLessThan(all);
    // Without release every gradient is alive at the end, and the tied embedding's sum is allocated on top.
    expect(h.gradPeakBytes).toBe(all + 2 * embedding);
    // An allocating accumulator briefly holds old sum + new part + new sum of the tied embedding.
    expect(a.gradPeakBytes).toBe(3 * embedding);
    // The engine's prediction, from the segment plan alone, matches what the ledger measured.
    expect(release.predictGradPeakBytes()).toBe(r.gradPeakBytes);
    expect(hold.predictGradPeakBytes()).toBe(h.gradPeakBytes);
    expect(allocating.predictGradPeakBytes()).toBe(a.gradPeakBytes);
    tf.dispose([batch.inputs, batch.targets, ...model.variables.values()]);
    ledger.detach();
  });

  it('reports parameter and optimizer-state bytes measured over unique buffers', async () => {
    const model = toyModel({ vocab: V, dim: D, depth: 2, seed: 1 });
    const engine = new TrainingEngine(model, { optimizer: momentum(0.05, 0.9), mode: 'segmented' });
    const batch = randomBatch(V, B, T, 2);
    const r = await engine.trainStep(batch);
    const nParams = [...model.variables.values()].reduce((s, v) => s + v.size, 0);
    expect(r.paramBytes).toBe(4 * nParams);
    expect(r.optimizerStateBytes).toBe(4 * nParams);
    expect(r.peakBytes).toBeGreaterThanOrEqual(r.paramBytes + r.optimizerStateBytes);
    expect(r.activationPeakBytes).toBeGreaterThan(0);
    engine.dispose();
    tf.dispose([batch.inputs, batch.targets, ...model.variables.values()]);
  });

  it('stops with a TrainingError naming the step when the loss is not finite, leaving parameters untouched', async () => {
    const model = toyModel({ vocab: V, dim: D, depth: 1, seed: 2 });
    const engine = new TrainingEngine(model, { optimizer: sgd(0.1), mode: 'segmented' });
    const W = model.variables.get('W0')!;
    tf.tidy(() => W.assign(tf.fill(W.shape, Number.NaN)));
    const E = model.variables.get('E')!;
    const before = E.dataSync().slice();
    const batch = randomBatch(V, B, T, 2);
    const start = tf.memory().numTensors;
    await expect(engine.trainStep(batch)).rejects.toThrow(TrainingError);
    await expect(engine.trainStep(batch)).rejects.toThrow(/step 1: loss is NaN/);
    expect(tf.memory().numTensors).toBe(start);
    expect(Array.from(E.dataSync())).toEqual(Array.from(before));
    tf.dispose([batch.inputs, batch.targets, ...model.variables.values()]);
  });

  it('rejects segments that do not cover the stages in order', async () => {
    const model = toyModel({ vocab: V, dim: D, depth: 2, seed: 4 });
    expect(
      () =>
        new TrainingEngine(model, { optimizer: sgd(0.1), mode: 'segmented', segments: [[0], [2, 1], [3]] }),
    ).toThrow(InputError);
    expect(
      () => new TrainingEngine(model, { optimizer: sgd(0.1), mode: 'segmented', segments: [[0, 1], [2]] }),
    ).toThrow(/do not cover the model's 4 stages/);
    tf.dispose([...model.variables.values()]);
  });
});

describe('composition', () => {
  it('takes exactly one optimizer', async () => {
    expect(() => composePlugins([sgd(0.1), momentum(0.1, 0.9)])).toThrow(PluginConflictError);
    expect(() => composePlugins([sgd(0.1), momentum(0.1, 0.9)])).toThrow(
      /two optimizers given \(sgd, momentum\)/,
    );
    expect(() => composePlugins([])).toThrow(/no optimizer plugin given/);
    expect(composePlugins([sgd(0.1)]).optimizer.name).toBe('sgd');
  });

  it('rejects a plugin listed twice and a plugin of another contract version', async () => {
    expect(() => composePlugins([sgd(0.1), sgd(0.2)])).toThrow(/listed twice/);
    const old = { ...sgd(0.1), specificationVersion: 'v0' };
    expect(() => callUntyped(composePlugins, [old])).toThrow(/implements contract v0/);
  });
});

describe('segmented engine when an update throws', () => {
  it('frees the gradients the failed segment had not handed over yet', async () => {
    const model = toyModel({ vocab: V, dim: D, depth: 2, seed: 12 });
    const failing = {
      ...sgd(0.1),
      update: (p: tf.Variable) => {
        if (p.name.endsWith('/W1')) throw new Error('refused');
      },
    };
    const engine = new TrainingEngine(model, { optimizer: failing, mode: 'segmented' });
    const batch = randomBatch(V, B, T, 5);
    const start = tf.memory().numTensors;
    await expect(engine.trainStep(batch)).rejects.toThrow('refused');
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([batch.inputs, batch.targets, ...model.variables.values()]);
  });
});

describe('skipUpdate', () => {
  it.each(['full', 'segmented'] as const)(
    '%s mode: a skipped step measures its loss, changes no parameter and frees every gradient',
    async (mode) => {
      const model = toyModel({ vocab: V, dim: D, depth: 2, seed: 5 });
      const seen: Array<[number, number]> = [];
      const engine = new TrainingEngine(model, {
        optimizer: sgd(0.1),
        mode,
        skipUpdate: (loss, step) => {
          seen.push([step, loss]);
          return step === 2;
        },
      });
      const batch = randomBatch(V, B, T, 7);
      const snapshot = () => [...model.variables.values()].map((v) => Array.from(v.dataSync()));
      const r1 = await engine.trainStep(batch);
      const before = snapshot();
      const tensors = tf.memory().numTensors;
      const r2 = await engine.trainStep(batch);
      expect(tf.memory().numTensors).toBe(tensors);
      expect(r2.skipped).toBe(true);
      expect(r2.loss).toBeLessThan(r1.loss); // step 1 did update
      expect(snapshot()).toEqual(before);
      const r3 = await engine.trainStep(batch);
      expect(r3.skipped).toBeUndefined();
      expect(r3.loss).toBeCloseTo(r2.loss, 6); // same weights, same batch: the same loss
      expect(snapshot()).not.toEqual(before);
      expect(seen.map(([s]) => s)).toEqual([1, 2, 3]);
      expect(seen[1]![1]).toBe(r2.loss);
      tf.dispose([batch.inputs, batch.targets]);
      engine.dispose();
    },
  );
});
