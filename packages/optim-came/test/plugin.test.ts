import { InputError, ShapeError } from '@kstar/core';
import {
  type BadOptionsCase,
  callUntyped,
  expectOptimizerPluginNamed,
  expectScheduledLearningRate,
  expectStateBytesMeasured,
  expectUpdatesLeakNothing,
  itRejectsBadOptions,
  onBackend,
} from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  CAME_DEFAULTS,
  came,
  cameFromReferenceHparams,
  cameStateBytes,
  cameUpdate,
  cameWhich,
} from '../src/index.ts';
import {
  came64Init,
  came64Step,
  goldenCameRuns,
  type Hp64,
  hp64FromReference,
  numel,
  randn,
  relErr,
  rng,
} from './helpers.ts';
import { replayPlugin } from './replay.ts';

const TOL = 1e-5;
onBackend('cpu');

const variable = (values: ArrayLike<number>, shape: number[], name: string) =>
  tf.tidy(() => tf.variable(tf.tensor(Float32Array.from(values), shape), true, name));

describe('came plugin: golden replay (came_pytorch.CAME, float64)', () => {
  it('every CAME run matches every recorded step within 1e-5 of RMS(p_ref), through the cpu kernel', async () => {
    const { runs } = goldenCameRuns();
    for (const run of runs) {
      const plugin = cameFromReferenceHparams(run.hparams);
      // The golden runs use came_pytorch's defaults (CAME_DEFAULTS, spelled out in the contract test) with lr 0.01.
      expect(plugin.hparams).toEqual({ lr: 0.01, ...CAME_DEFAULTS });
      const before = tf.memory().numTensors;
      const r = await replayPlugin(plugin, run, 'golden-plugin');
      expect(Object.keys(r.errors).map(Number)).toEqual(run.after.map((a) => a.step));
      console.log(
        `[optim-came] golden replay (plugin, cpu kernel) worst rel err ${r.worst.toExponential(3)} at ${r.worstAt}`,
      );
      for (const perParam of Object.values(r.errors)) {
        for (const e of Object.values(perParam)) expect(e).toBeLessThanOrEqual(TOL);
      }
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('matches through the tfjs-ops fallback as well', async () => {
    for (const run of goldenCameRuns().runs) {
      const plugin = came({ ...cameFromReferenceHparams(run.hparams).hparams, impl: 'fallback' });
      const r = await replayPlugin(plugin, run, 'golden-plugin-fallback');
      console.log(
        `[optim-came] golden replay (plugin, cpu fallback) worst rel err ${r.worst.toExponential(3)} at ${r.worstAt}`,
      );
      expect(r.worst).toBeLessThanOrEqual(TOL);
    }
  });

  it('is sensitive: beta3 0.999 instead of 0.9999 misses the golden by far more than the tolerance', async () => {
    const run = goldenCameRuns().runs[0]!;
    const r = await replayPlugin(
      cameFromReferenceHparams({ ...run.hparams, beta3: 0.999 }),
      run,
      'golden-b3',
    );
    expect(r.worst).toBeGreaterThan(100 * TOL);
  });

  it('the float64 reference used below reproduces the golden to ~1e-12 (it is a faithful CAME)', () => {
    const { golden, runs } = goldenCameRuns();
    for (const run of runs) {
      const hp = hp64FromReference(run.hparams);
      let worst = 0;
      for (const name of run.params_used) {
        const p = Float64Array.from(golden.init[name]!);
        const s = came64Init(golden.shapes[name]!);
        for (let t = 1; t <= golden.grads.length; t++) {
          came64Step(p, golden.grads[t - 1]![name]!, s, hp);
          const rec = run.after.find((a) => a.step === t);
          if (rec) worst = Math.max(worst, relErr(p, rec.params[name]!));
        }
      }
      expect(worst).toBeLessThan(1e-9);
    }
  });
});

describe('came plugin: float64 JS reference over random data', () => {
  it('native kernel and fallback agree with it within 1e-5 for 20 steps (non-default hyper-parameters, ranks 0–4)', () => {
    const hp: Hp64 = {
      lr: 3e-3,
      beta1: 0.8,
      beta2: 0.95,
      beta3: 0.99,
      eps1: 1e-20,
      eps2: 1e-12,
      clipThreshold: 0.7,
      weightDecay: 0.1,
    };
    const next = rng(1234);
    const shapes: Record<string, number[]> = {
      a: [17, 9],
      b: [5],
      c: [3, 2, 4],
      d: [2, 3, 4, 5],
      e: [],
      f: [1, 7],
      g: [7, 1],
    };
    let worstNative = 0;
    let worstFallback = 0;
    for (const impl of ['auto', 'fallback'] as const) {
      const plugin = came({ ...hp, impl });
      let worst = 0;
      for (const [name, shape] of Object.entries(shapes)) {
        const p0 = Float32Array.from(randn(next, numel(shape), 0.5));
        const ref = Float64Array.from(p0);
        const s64 = came64Init(shape);
        const v = variable(p0, shape, `rand-${impl}/${name}`);
        const s = plugin.init({ name: `rand-${impl}/${name}`, shape, role: 'other' });
        const g0 = tf.zeros(shape);
        expect(cameWhich(v, g0, s, { impl })).toBe(impl === 'auto' ? 'native' : 'fallback');
        g0.dispose();
        for (let t = 1; t <= 20; t++) {
          // Gradients of varying scale per step, exactly representable in float32 for both sides.
          const g = Float32Array.from(randn(next, numel(shape), 10 ** ((t % 5) - 2)));
          if (t === 3) g.fill(0, 0, Math.ceil(g.length / 3)); // zero rows/elements: the ε1 path
          const gt = tf.tensor(g, shape);
          plugin.update(v, gt, s, t);
          gt.dispose();
          came64Step(ref, g, s64, hp);
          worst = Math.max(worst, relErr(v.dataSync(), ref));
          worst = Math.max(worst, relErr(s.m.dataSync(), s64.expAvg));
        }
        tf.dispose([v, ...Object.values(s)]);
      }
      if (impl === 'auto') worstNative = worst;
      else worstFallback = worst;
    }
    console.log(
      `[optim-came] float64 reference, 20 steps, ranks 0–4: worst rel err native ${worstNative.toExponential(3)}, fallback ${worstFallback.toExponential(3)}`,
    );
    expect(worstNative).toBeLessThanOrEqual(TOL);
    expect(worstFallback).toBeLessThanOrEqual(TOL);
  });
});

describe('came plugin: closed forms', () => {
  it('vector first step: U = g·rsqrt((1−β2)(g²+ε1)) has |U| = 1/√(1−β2), clipped to RMS 1 → p moves by lr·(1−β1)·sign(g)', () => {
    const lr = 0.01;
    const plugin = came({ lr });
    const g = [0.3, -2, 5e-3, -7];
    const p = variable([0, 0, 0, 0], [4], 'first/b');
    const s = plugin.init({ name: 'first/b', shape: [4], role: 'vector' });
    const gt = tf.tensor(g);
    plugin.update(p, gt, s, 1);
    const dp = p.dataSync();
    for (let i = 0; i < 4; i++) expect(dp[i]! / (-lr * 0.1 * Math.sign(g[i]!))).toBeCloseTo(1, 6);
    // v = (1−β2)(g² + ε1) exactly (first step); m = (1−β1)·Û with Û = sign(g).
    const v = s.v.dataSync();
    for (let i = 0; i < 4; i++) expect(v[i]! / (0.001 * Math.fround(g[i]!) ** 2)).toBeCloseTo(1, 6);
    for (const [i, m] of Array.from(s.m.dataSync()).entries())
      expect(m).toBeCloseTo(0.1 * Math.sign(g[i]!), 6);
    tf.dispose([p, gt, ...Object.values(s)]);
  });

  it('matrix first step with a rank-1 gradient: the factoring is exact, so |Δp| = lr·(1−β1)/(β1·√(1−β3)) everywhere', () => {
    const lr = 1e-3;
    const plugin = came({ lr });
    const a = [0.5, -1, 2];
    const b = [1, 3, -0.25, 0.1];
    const g = a.flatMap((x) => b.map((y) => x * y));
    const p = variable(new Array(12).fill(0), [3, 4], 'first/W');
    const s = plugin.init({ name: 'first/W', shape: [3, 4], role: 'matrix' });
    const gt = tf.tensor(g, [3, 4]);
    plugin.update(p, gt, s, 1);
    // Û = sign(g), m = 0.1·Û, res = (0.9·Û)² + ε2 = 0.81 everywhere, so the confidence factor is 1/√(1e-4·0.81).
    const expected = (lr * 0.1) / (0.9 * Math.sqrt(1e-4));
    const dp = p.dataSync();
    for (let i = 0; i < 12; i++) expect(dp[i]! / (-Math.sign(g[i]!) * expected)).toBeCloseTo(1, 5);
    expect(s.vRow.shape).toEqual([3]);
    expect(s.vCol.shape).toEqual([4]);
    tf.dispose([p, gt, ...Object.values(s)]);
  });

  it('decoupled weight decay: with a zero gradient the step is exactly p ← p − wd·lr·p (matrix, 3-D and vector)', () => {
    const lr = 0.05;
    const weightDecay = 0.2;
    const plugin = came({ lr, weightDecay });
    for (const shape of [[4, 3], [2, 3, 2], [5]]) {
      const n = numel(shape);
      const p0 = Float32Array.from({ length: n }, (_, i) => 0.5 + i);
      const p = variable(p0, shape, `wd/${shape.join('x')}`);
      const s = plugin.init({ name: `wd/${shape.join('x')}`, shape, role: 'other' });
      const g = tf.zeros(shape);
      plugin.update(p, g, s, 1);
      const out = p.dataSync();
      for (let i = 0; i < n; i++) expect(out[i]).toBeCloseTo(p0[i]! * (1 - lr * weightDecay), 5);
      tf.dispose([p, g, ...Object.values(s)]);
    }
  });

  it('3-D tensors factor their LAST two dims (state shapes as came_pytorch): T [4,6,5] → rows [4,6], cols [4,5]', () => {
    const { golden } = goldenCameRuns();
    const s = came({ lr: 1 }).init({ name: 'shapes/T', shape: golden.shapes.T!, role: 'other' });
    expect(Object.fromEntries(Object.entries(s).map(([k, t]) => [k, t.shape]))).toEqual({
      m: [4, 6, 5],
      vRow: [4, 6],
      vCol: [4, 5],
      resRow: [4, 6],
      resCol: [4, 5],
    });
    tf.dispose(Object.values(s));
  });
});

describe('came plugin: contract', () => {
  it('states its kind, version, name and hyper-parameters', () => {
    const p = came({ lr: 2e-4 });
    expectOptimizerPluginNamed(p, 'came');
    expect(p.hparams).toEqual({ lr: 2e-4, ...CAME_DEFAULTS });
    expect(CAME_DEFAULTS).toEqual({
      beta1: 0.9,
      beta2: 0.999,
      beta3: 0.9999,
      eps1: 1e-30,
      eps2: 1e-16,
      clipThreshold: 1,
      weightDecay: 0,
    });
    expect(p.describe()).toMatchObject({ lr: 2e-4, beta3: 0.9999, impl: 'auto' });
    expect(p.needsAllGradients).toBeFalsy();
  });

  it('state: non-trainable zero float32 variables named <param>/<key>, each the only holder of its buffer', () => {
    const s = came({ lr: 1 }).init({ name: 'names/W', shape: [3, 4], role: 'matrix' });
    expect(Object.keys(s)).toEqual(['m', 'vRow', 'vCol', 'resRow', 'resCol']);
    for (const [k, t] of Object.entries(s) as [string, tf.Variable][]) {
      expect(t.name).toBe(`names/W/${k}`);
      expect(t.trainable).toBe(false);
      expect(t.dtype).toBe('float32');
      expect(Array.from(t.dataSync()).every((x) => x === 0)).toBe(true);
      expect(tf.backend().refCount(t.dataId)).toBe(1);
    }
    const v = came({ lr: 1 }).init({ name: 'names/b', shape: [4], role: 'vector' });
    expect(Object.keys(v)).toEqual(['m', 'v']);
    // A second state for the same parameter name gets a free name instead of clashing.
    const s2 = came({ lr: 1 }).init({ name: 'names/W', shape: [3, 4], role: 'matrix' });
    expect(s2.m.name).toBe('names/W/m_1');
    tf.dispose([...Object.values(s), ...Object.values(v), ...Object.values(s2)]);
  });

  it('stateBytes(shape) equals the measured unique state bytes for every golden shape, before and after an update', () => {
    const { golden } = goldenCameRuns();
    const plugin = came({ lr: 1e-3 });
    const updaters = (['auto', 'fallback'] as const).map((impl) => came({ lr: 1e-3, impl }));
    const rows = expectStateBytesMeasured(plugin, golden.shapes, { updaters });
    console.log(`[optim-came] state bytes: ${rows.join('; ')}`);
    // The formulas: 4mn + 8(m+n) per matrix (batch dims multiply), 8n per vector.
    expect(cameStateBytes([32, 24])).toBe(4 * 32 * 24 + 8 * (32 + 24));
    expect(cameStateBytes([4, 6, 5])).toBe(4 * 120 + 8 * 4 * (6 + 5));
    expect(cameStateBytes([24])).toBe(8 * 24);
    expect(cameStateBytes([])).toBe(8);
    expect(cameStateBytes([768, 3072])).toBe(4 * 768 * 3072 + 8 * (768 + 3072));
  });

  it('leaks nothing: numTensors grows only by the state at init, stays put over updates, returns after dispose', () => {
    const plugin = came({ lr: 0.05 });
    for (const shape of [[8, 8], [8]]) {
      expectUpdatesLeakNothing(plugin, shape, {
        whileCloned: (p, g, s) => expect(cameWhich(p, g, s)).toBe('fallback'),
      });
    }
  });

  it('updates in place on cpu: the parameter and every state keep their buffers (dataId) through the step', () => {
    const plugin = came({ lr: 1e-2 });
    for (const shape of [[6, 3], [2, 6, 3], [5]]) {
      const p = tf.tidy(() => tf.variable(tf.ones(shape), true, `inplace/${shape.length}`));
      const s = plugin.init({ name: `inplace/${shape.length}`, shape, role: 'other' });
      const ids = [p.dataId, ...Object.values(s).map((t) => t.dataId)];
      const buffers = tf.memory().numDataBuffers;
      const g = tf.fill(shape, 0.5);
      const buffersWithGrad = tf.memory().numDataBuffers;
      expect(buffersWithGrad).toBe(buffers + 1);
      plugin.update(p, g, s, 1);
      expect(tf.memory().numDataBuffers).toBe(buffersWithGrad);
      const after = [p.dataId, ...Object.values(s).map((t) => t.dataId)];
      for (let i = 0; i < ids.length; i++) expect(after[i]).toBe(ids[i]);
      expect(p.dataSync()[0]).not.toBe(1);
      tf.dispose([p, g, ...Object.values(s)]);
    }
  });

  it('does not write through a live clone (shared buffer → tfjs-ops fallback), and the result is still right', () => {
    const plugin = came({ lr: 0.01 });
    const shape = [4, 5];
    const p0 = Float32Array.from(randn(rng(3), 20));
    const p = variable(p0, shape, 'alias/W');
    const clone = tf.clone(p);
    const s = plugin.init({ name: 'alias/W', shape, role: 'matrix' });
    const g = Float32Array.from(randn(rng(4), 20));
    const gt = tf.tensor(g, shape);
    plugin.update(p, gt, s, 1);
    expect(Array.from(clone.dataSync())).toEqual(Array.from(p0));
    const ref = Float64Array.from(p0);
    came64Step(ref, g, came64Init(shape), { lr: 0.01, ...CAME_DEFAULTS });
    expect(relErr(p.dataSync(), ref)).toBeLessThan(TOL);
    tf.dispose([p, clone, gt, ...Object.values(s)]);
  });

  it('learningRate (contract field for schedules) is settable, validated, and used by the next update', () => {
    // Vector first step moves every element by lr·(1−β1) = 0.02.
    expectScheduledLearningRate(came({ lr: 0.1 }), { initial: 0.1, next: 0.2 }, [0.5, 2, 3], (p) => {
      for (const x of p) expect(x).toBeCloseTo(0.98, 6);
    });
  });

  it('rejects state it did not create, mismatched shapes and bad steps', () => {
    const plugin = came({ lr: 1 });
    const p = variable([1, 2, 3, 4], [2, 2], 'bad-state/W');
    const g = tf.ones([2, 2]);
    expect(() => plugin.update(p, g, {}, 1)).toThrow(InputError);
    const vec = plugin.init({ name: 'bad-state/v', shape: [4], role: 'vector' });
    expect(() => plugin.update(p, g, vec, 1)).toThrow(InputError);
    const s = plugin.init({ name: 'bad-state/W', shape: [2, 2], role: 'matrix' });
    const g3 = tf.ones([4]);
    expect(() => plugin.update(p, g3, s, 1)).toThrow(ShapeError);
    const wrong = plugin.init({ name: 'bad-state/W3', shape: [2, 3], role: 'matrix' });
    expect(() => cameUpdate(p, g, wrong, plugin.hparams)).toThrow(ShapeError);
    expect(() => plugin.update(p, g, s, 0)).toThrow(InputError);
    expect(() => plugin.update(p, g, s, 1.5)).toThrow(InputError);
    tf.dispose([p, g, g3, ...Object.values(vec), ...Object.values(s), ...Object.values(wrong)]);
  });
});

describe('came plugin: bad options → InputError', () => {
  const bad: BadOptionsCase[] = [
    ['lr missing', {}, /lr is required/],
    ['lr 0', { lr: 0 }, /lr = 0 .*> 0/],
    ['lr negative', { lr: -1e-3 }, /lr = -0\.001/],
    ['lr infinite', { lr: Number.POSITIVE_INFINITY }, /lr = Infinity/],
    ['lr NaN', { lr: Number.NaN }, /lr = NaN/],
    ['lr string', { lr: '1e-3' }, /lr = "1e-3"/],
    ['beta1 = 1', { lr: 1, beta1: 1 }, /beta1 = 1 .*\[0, 1\)/],
    ['beta2 < 0', { lr: 1, beta2: -0.1 }, /beta2 = -0\.1/],
    ['beta3 = 1.5', { lr: 1, beta3: 1.5 }, /beta3 = 1\.5/],
    ['eps1 0', { lr: 1, eps1: 0 }, /eps1 = 0 .*> 0/],
    ['eps2 negative', { lr: 1, eps2: -1 }, /eps2 = -1/],
    ['clipThreshold 0', { lr: 1, clipThreshold: 0 }, /clipThreshold = 0/],
    [
      'clipThreshold Infinity',
      { lr: 1, clipThreshold: Number.POSITIVE_INFINITY },
      /clipThreshold = Infinity/,
    ],
    ['weightDecay < 0', { lr: 1, weightDecay: -0.01 }, /weightDecay = -0\.01 .*≥ 0/],
    ['unknown option', { lr: 1, learningRate: 0.1 }, /unknown option 'learningRate'/],
    ['impl', { lr: 1, impl: 'gpu' }, /impl = "gpu"/],
  ];
  itRejectsBadOptions(came, bad);

  it('no options at all → InputError (lr is required, as in came_pytorch)', () => {
    expect(() => callUntyped(came, undefined)).toThrow(/lr is required|options must be an object/);
  });

  it('accepts the edge values beta = 0 and weightDecay = 0', () => {
    expect(came({ lr: 1, beta1: 0, beta2: 0, beta3: 0 }).hparams).toMatchObject({
      beta1: 0,
      beta2: 0,
      beta3: 0,
    });
  });

  it('reference names: flat or tuples (betas, eps), clip_threshold, weight_decay; unknown keys and bad values rejected', () => {
    const expected = {
      lr: 0.02,
      beta1: 0.8,
      beta2: 0.95,
      beta3: 0.995,
      eps1: 1e-20,
      eps2: 1e-10,
      clipThreshold: 0.5,
      weightDecay: 0.1,
    };
    expect(
      cameFromReferenceHparams({
        lr: 0.02,
        betas: [0.8, 0.95, 0.995],
        eps: [1e-20, 1e-10],
        clip_threshold: 0.5,
        weight_decay: 0.1,
      }).hparams,
    ).toEqual(expected);
    // Flat: lr, beta1–3, eps1–2 under our names; only the last two are snake_case.
    const { clipThreshold, weightDecay, ...flat } = expected;
    expect(
      cameFromReferenceHparams({ ...flat, clip_threshold: clipThreshold, weight_decay: weightDecay }).hparams,
    ).toEqual(expected);
    expect(cameFromReferenceHparams({ lr: 1e-3 }).hparams).toEqual({ lr: 1e-3, ...CAME_DEFAULTS });
    expect(() => cameFromReferenceHparams({})).toThrow(/lr is required/);
    expect(() => callUntyped(cameFromReferenceHparams, { lr: 1, amsgrad: true })).toThrow(InputError);
    expect(() => cameFromReferenceHparams({ lr: 1, weight_decay: -1 })).toThrow(/weightDecay = -1/);
    expect(() => callUntyped(cameFromReferenceHparams, { lr: 1, betas: [0.9, 0.99] })).toThrow(InputError);
    expect(() => cameFromReferenceHparams({ lr: 1, betas: [0.9, 0.99, 0.999], beta1: 0.9 })).toThrow(
      InputError,
    );
    expect(() => cameFromReferenceHparams({ lr: 1, eps: [1e-30, 1e-16], eps2: 1e-16 })).toThrow(InputError);
  });
});
