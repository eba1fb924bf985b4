import {
  MemoryLedger,
  type OptimizerPlugin,
  type OptimizerState,
  SPECIFICATION_VERSION,
  stateVariable,
  TrainingEngine,
} from '@kstar/core';
import { adamwUpdate, joinValue, selectBackend, split24Bytes, splitValue } from '@kstar/kernels';
import { callUntyped, momentum, randomBatch, toyModel } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { split24 } from '../src/index.ts';

const V = 40;
const D = 16;
const B = 3;
const T = 5;
const SEGMENTS = [[0], [1, 2], [3, 4], [5]];

beforeAll(async () => {
  await selectBackend('cpu');
});

/** AdamW through the fused in-place kernel (writes the temporary variable's buffer in place). */
function adamwPlugin(lr: number): OptimizerPlugin {
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'optimizer',
    name: 'adamw-test',
    describe: () => ({ lr }),
    init: (p): OptimizerState => ({
      m: stateVariable(`${p.name}/m`, p.shape),
      v: stateVariable(`${p.name}/v`, p.shape),
    }),
    update: (param, grad, state, step) =>
      adamwUpdate(param, grad, state.m as tf.Variable, state.v as tf.Variable, {
        lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weightDecay: 0.01,
        step,
      }),
    stateBytes: (shape) => 8 * shape.reduce((a, b) => a * b, 1),
  };
}

/** float64 reference: bf16 (expand) and 24-bit (reconstruct) values of a float32 array. */
const bf16Of = (a: Float32Array) => Array.from(a, (x) => joinValue(splitValue(x).hi, 0));
const splitOf = (a: Float32Array) => Array.from(a, (x) => joinValue(splitValue(x).hi, splitValue(x).rho));

function snapshot(model: ReturnType<typeof toyModel>): Map<string, Float32Array> {
  return new Map([...model.variables].map(([n, v]) => [n, v.dataSync() as Float32Array]));
}

describe('split24 master weights', () => {
  it('adopt frees the float32 buffers: 3 bytes a parameter measured; materialize = bf16, reconstruct within 2^−15', () => {
    const ledger = new MemoryLedger();
    const model = toyModel({ vocab: V, dim: D, depth: 2, seed: 1 });
    const before = snapshot(model);
    ledger.adopt(model.variables.values());
    const alive0 = ledger.bytesAlive;
    const mw = split24();
    mw.adopt(model.variables);
    for (const v of model.variables.values()) expect(v.isDisposed).toBe(true);
    let n = 0;
    let predicted = 0;
    for (const v of model.variables.values()) {
      n += v.size;
      predicted += mw.bytesFor(v.shape);
    }
    const held = mw.tensors().reduce((s, t) => s + 4 * t.size, 0);
    expect(held).toBe(predicted);
    expect(held / n).toBeLessThanOrEqual(3.05);
    expect(alive0 - ledger.bytesAlive).toBe(4 * n - held); // float32 freed, split stored
    const start = tf.memory().numTensors;
    const ps = mw.materialize(mw.names());
    for (const [name, w] of before) {
      expect(ps[name]!.shape).toEqual(model.variables.get(name)!.shape);
      expect(Array.from(ps[name]!.dataSync())).toEqual(bf16Of(w));
      const r = mw.reconstruct(name);
      expect(Array.from(r.dataSync())).toEqual(splitOf(w));
      const d = r.dataSync();
      for (let i = 0; i < w.length; i++) {
        expect(Math.abs(d[i]! - w[i]!)).toBeLessThanOrEqual(2 ** -15 * Math.max(Math.abs(w[i]!), 2 ** -126));
      }
      r.dispose();
    }
    tf.dispose(Object.values(ps));
    expect(tf.memory().numTensors).toBe(start);
    mw.dispose();
    ledger.detach();
  });

  it.each(['full', 'segmented'] as const)(
    '%s mode: a step = gradients at the bf16 weights, update of the 24-bit value; paramBytes 3 B/param; no leak',
    async (mode) => {
      // Reference: a float32 engine over a model whose variables hold the split engine's 24-bit values, with the
      // gradients taken at the bf16 values (the same model, weights rounded before the forward).
      const model = toyModel({ vocab: V, dim: D, depth: 4, seed: 5 });
      const w0 = snapshot(model);
      const ref = toyModel({ vocab: V, dim: D, depth: 4, seed: 5 });
      for (const [name, v] of ref.variables) {
        const t = tf.tensor(bf16Of(w0.get(name)!), v.shape);
        v.assign(t);
        t.dispose();
      }
      const opts = { mode, ...(mode === 'segmented' ? { segments: SEGMENTS } : {}) };
      const refEngine = new TrainingEngine(ref, { optimizer: momentum(0.1, 0.9), ...opts });
      const mw = split24();
      const engine = new TrainingEngine(model, { optimizer: momentum(0.1, 0.9), masterWeights: mw, ...opts });
      const batch = randomBatch(V, B, T, 9);
      const gRef = await refEngine.computeGradients(batch);
      const start = tf.memory().numTensors;
      const r = await engine.trainStep(batch);
      expect(tf.memory().numTensors).toBe(start);
      expect(r.loss).toBeCloseTo(gRef.loss, 5);
      let n = 0;
      for (const v of model.variables.values()) n += v.size;
      expect(r.paramBytes).toBe(mw.tensors().reduce((s, t) => s + 4 * t.size, 0));
      expect(r.paramBytes / n).toBeLessThanOrEqual(3.05);
      // Momentum's first step: w1 = reconstruct(w0) − 0.1·g(bf16(w0)), stored split.
      for (const [name, w] of w0) {
        const g = gRef.grads.get(name)!.dataSync();
        const rec = splitOf(w);
        const want = splitOf(Float32Array.from(rec, (x, i) => x - 0.1 * g[i]!));
        const got = mw.reconstruct(name);
        const d = got.dataSync();
        for (let i = 0; i < d.length; i++) {
          // One float32 rounding of the update may move ρ by one step (258 ulps < 2^−15 relative).
          expect(Math.abs(d[i]! - want[i]!), name).toBeLessThanOrEqual(2 ** -15 * Math.abs(want[i]!) + 1e-7);
        }
        got.dispose();
      }
      expect(await engine.evaluate(batch)).toBeGreaterThan(0);
      tf.dispose([...gRef.grads.values(), batch.inputs, batch.targets]);
      engine.dispose();
      refEngine.dispose();
      mw.dispose();
      for (const v of ref.variables.values()) v.dispose();
    },
  );

  it('save → load → step is bit-identical to the uninterrupted step (cpu, split weights + AdamW state)', async () => {
    const batches = [1, 2, 3].map((s) => randomBatch(V, B, T, 20 + s));
    const makeEngine = (seed: number, mw: ReturnType<typeof split24>, initialStep = 0) =>
      new TrainingEngine(toyModel({ vocab: V, dim: D, depth: 2, seed }), {
        optimizer: adamwPlugin(1e-2),
        mode: 'segmented',
        masterWeights: mw,
        initialStep,
      });
    const mwA = split24();
    const a = makeEngine(7, mwA);
    await a.trainStep(batches[0]!);
    await a.trainStep(batches[1]!);
    // Save: split words, optimizer state values, step.
    const saved = await mwA.getState();
    const optState = new Map(
      mwA
        .names()
        .map((n) => [n, Object.entries(a.stateOf(n)!).map(([k, t]) => [k, t.dataSync().slice()] as const)]),
    );
    await a.trainStep(batches[2]!);
    // Load into a fresh model with other weights.
    const mwB = split24();
    mwB.setState(saved);
    const b = makeEngine(99, mwB, a.step - 1);
    for (const [n, entries] of optState) {
      for (const [k, values] of entries) {
        const t = tf.tensor(values, b.stateOf(n)![k]!.shape);
        (b.stateOf(n)![k] as tf.Variable).assign(t);
        t.dispose(); // refCount 1: the in-place kernel runs, as in the uninterrupted run
      }
    }
    const rb = await b.trainStep(batches[2]!);
    expect(rb.step).toBe(3);
    const sa = await mwA.getState();
    const sb = await mwB.getState();
    for (const n of mwA.names()) {
      expect(Array.from(sb[n]!.hi), n).toEqual(Array.from(sa[n]!.hi));
      expect(Array.from(sb[n]!.lo), n).toEqual(Array.from(sa[n]!.lo));
    }
    a.dispose();
    b.dispose();
    mwA.dispose();
    mwB.dispose();
    tf.dispose(batches.flatMap((x) => [x.inputs, x.targets]));
  });

  it('bytesFor = split24Bytes; errors name the parameter', () => {
    const mw = split24();
    expect(mw.bytesFor([3, 5])).toBe(split24Bytes(15));
    expect(() => mw.materialize(['nope'])).toThrow(/no parameter 'nope'/);
    expect(() => callUntyped(split24, { impl: 'x' })).toThrow(/impl = "x"/);
  });
});
