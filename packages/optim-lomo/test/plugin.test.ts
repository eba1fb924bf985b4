import { InputError, PluginConflictError, SPECIFICATION_VERSION, uniqueBufferBytes } from '@kstar/core';
import { callUntyped, onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  adalomo,
  adalomoFromReferenceHparams,
  adalomoKernel,
  adalomoStateBytes,
  lomo,
  lomoAccumulationError,
  lomoFromReferenceHparams,
  lomoKernel,
  lomoStateBytes,
} from '../src/index.ts';
import { loadGolden, numel, TOL } from './helpers.ts';
import { adalomoParity, checkAdalomoParity, lomoParity } from './parity.ts';
import { ADALOMO_RUN, formatReplay, pluginForRun, replay, SGD_RUN } from './replay.ts';

onBackend('cpu');

describe('golden replay (cpu)', () => {
  for (const impl of ['auto', 'fallback'] as const) {
    it(`sgd run (index 1) as LOMO, ${impl}: within 1e-5 of each parameter's RMS at every recorded step`, async () => {
      const r = await replay(pluginForRun(SGD_RUN, impl), SGD_RUN, `cpu-sgd-${impl}`);
      console.log(formatReplay(`golden sgd as LOMO (cpu, ${impl})`, r));
      expect(Object.keys(r.errors).map(Number)).toEqual([1, 2, 5, 10]);
      expect(Object.keys(r.errors[10]!)).toEqual(['W', 'b', 'T', 'E']);
      expect(r.worst).toBeLessThanOrEqual(TOL);
    });
    it(`adalomo run (index 7), ${impl}: within 1e-5 at every recorded step`, async () => {
      const r = await replay(pluginForRun(ADALOMO_RUN, impl), ADALOMO_RUN, `cpu-adalomo-${impl}`);
      console.log(formatReplay(`golden adalomo (cpu, ${impl})`, r));
      expect(Object.keys(r.errors[10]!)).toEqual(['W', 'b', 'E']);
      expect(r.worst).toBeLessThanOrEqual(TOL);
    });
  }

  it('the replay can fail: a wrong lr misses the golden trajectory', async () => {
    const r = await replay(adalomo({ lr: 0.011 }), ADALOMO_RUN, 'cpu-adalomo-wrong');
    expect(r.worst).toBeGreaterThan(1e-4);
  });

  it('uses the native kernels on cpu', () => {
    const p = tf.tidy(() => tf.variable(tf.zeros([2, 3]), true, 'native-check/W'));
    const g = tf.ones([2, 3]);
    const plugin = adalomo();
    const s = plugin.init({ name: 'native-check/W', shape: [2, 3], role: 'matrix' });
    expect(callUntyped(lomoKernel.which, { param: p, grad: g, hp: {} })).toBe('native');
    expect(callUntyped(adalomoKernel.which, { param: p, grad: g, state: s, hp: {} })).toBe('native');
    // A live clone shares p's buffer: the in-place kernels must decline.
    const c = tf.clone(p);
    expect(callUntyped(lomoKernel.which, { param: p, grad: g, hp: {} })).toBe('fallback');
    tf.dispose([p, g, c, ...Object.values(s)]);
  });
});

describe('kernels vs float64 references (cpu)', () => {
  it('AdaLomo: native and fallback within 1e-5 over 4 steps (rank 0–4, clipValue, weight decay, gradScale)', async () => {
    const rows = await adalomoParity();
    console.log(
      `[optim-lomo] adalomo parity (cpu): ${rows.map((r) => `${r.label} ${r.native.toExponential(1)}/${r.fallback.toExponential(1)}`).join('; ')}`,
    );
    checkAdalomoParity(rows);
  });
  it('LOMO: clamp, gradScale, weight decay, lr', async () => {
    expect(await lomoParity()).toBeLessThanOrEqual(1e-6);
  });
  it('first AdaLomo step on a matrix moves every element by lr·max(eps2, RMS(p))·(±1 pattern of the factored update)', () => {
    // With β̂ = 0 at t = 1 and a rank-1 |g| (|g_ij| = a_i·b_j), V̂ = g² exactly, so U = sign(g) and RMS(U) = 1.
    const plugin = adalomo({ lr: 0.1 });
    const shape = [3, 4];
    const p = tf.tidy(() => tf.variable(tf.fill(shape, 2), true, 'first-step/W'));
    const s = plugin.init({ name: 'first-step/W', shape, role: 'matrix' });
    const a = [1, 2, 3];
    const b = [1, -1, 2, -0.5];
    const g = tf.tensor(
      a.flatMap((x) => b.map((y) => x * y)),
      shape,
    );
    plugin.update(p, g, s, 1);
    const got = p.dataSync();
    for (let i = 0; i < 12; i++) expect(got[i]).toBeCloseTo(2 - 0.1 * 2 * Math.sign(b[i % 4]!), 5);
    tf.dispose([p, g, ...Object.values(s)]);
  });
});

describe('plugin contract, options and errors', () => {
  it('is an optimizer plugin; factories from reference names', () => {
    const golden = loadGolden();
    const l = callUntyped(lomoFromReferenceHparams, golden.runs[SGD_RUN]!.hparams);
    expect(l.specificationVersion).toBe(SPECIFICATION_VERSION);
    expect(l.kind).toBe('optimizer');
    expect(l.name).toBe('lomo');
    expect(l.learningRate).toBe(0.01);
    expect(l.needsAllGradients).toBeUndefined();
    const a = callUntyped(adalomoFromReferenceHparams, golden.runs[ADALOMO_RUN]!.hparams);
    expect(a.name).toBe('adalomo');
    expect(a.hparams).toMatchObject({
      lr: 0.01,
      lossScale: 1024,
      eps1: 1e-30,
      eps2: 1e-3,
      clipThreshold: 1,
      decayRate: -0.8,
      weightDecay: 0,
    });
    expect(adalomoFromReferenceHparams({ eps: [1e-20, 1e-2] }).hparams).toMatchObject({
      eps1: 1e-20,
      eps2: 1e-2,
    });
    expect(
      lomoFromReferenceHparams({ lr: 0.03, clip_grad_norm: 1, clip_grad_value: 5, weight_decay: 0.1 })
        .hparams,
    ).toEqual({ lr: 0.03, clipGradNorm: 1, clipValue: 5, weightDecay: 0.1 });
    expect(adalomo({ lossScale: 0 }).hparams.lossScale).toBeNull();
    a.learningRate = 5e-4;
    expect(a.hparams.lr).toBe(5e-4);
    expect(() => {
      a.learningRate = -1;
    }).toThrow(/lr = -1 is invalid/);
    expect(l.describe()).toMatchObject({ lr: 0.01, impl: 'auto' });
  });

  it('rejects gradient accumulation loudly', () => {
    const msg =
      'LOMO updates inside the backward pass and frees each gradient at once, so gradients cannot be accumulated across micro-batches: use a larger batch, or AdamW/Adafactor with accumulation';
    expect(() => lomo({ accumulate: 4 })).toThrow(PluginConflictError);
    expect(() => lomo({ accumulate: 4 })).toThrow(msg);
    expect(() => adalomo({ accumulate: 2 })).toThrow(/adalomo: gradient accumulation over 2 micro-batches/);
    expect(() => lomo({ accumulate: 1 })).not.toThrow();
    expect(() => lomo({ accumulate: 1.5 })).toThrow(InputError);
    const e = lomoAccumulationError(8);
    expect(e).toBeInstanceOf(PluginConflictError);
    expect(e.message).toContain(msg);
    expect(e.exitCode).toBe(2);
  });

  it('validates options with InputErrors naming the field', () => {
    expect(() => lomo({ lr: 0 })).toThrow(/lomo: lr = 0 is invalid: it must be a finite number > 0/);
    expect(() => lomo({ clipValue: -1 })).toThrow(/clipValue = -1 is invalid/);
    expect(() => lomo({ clipGradNorm: Number.NaN })).toThrow(/clipGradNorm = NaN is invalid/);
    expect(() => adalomo({ decayRate: 0.8 })).toThrow(/decayRate = 0.8 is invalid/);
    expect(() => adalomo({ clipThreshold: 0 })).toThrow(/clipThreshold = 0 is invalid/);
    expect(() => callUntyped(lomo, { beta1: 0.9 })).toThrow(/unknown option 'beta1'/);
    expect(() => callUntyped(lomo, { impl: 'gpu' })).toThrow(InputError);
    const plugin = lomo();
    expect(() => {
      plugin.gradScale = -2;
    }).toThrow(/gradScale = -2 is invalid/);
  });

  it('clipGradNorm without a norm pass throws (the reference: grad_norm before fused_backward)', () => {
    const plugin = lomo({ lr: 0.1, clipGradNorm: 1 });
    const p = tf.tidy(() => tf.variable(tf.ones([3]), true, 'no-norm/b'));
    const g = tf.ones([3]);
    expect(() => plugin.update(p, g, {}, 1)).toThrow(PluginConflictError);
    expect(() => plugin.update(p, g, {}, 1)).toThrow(/lomoStep\(engine, batch\)/);
    plugin.gradScale = 0.5;
    plugin.update(p, g, {}, 1);
    expect(Array.from(p.dataSync())).toEqual([0.95, 0.95, 0.95].map(Math.fround));
    tf.dispose([p, g]);
  });

  it('rejects a mismatched gradient or state', () => {
    const plugin = adalomo();
    const p = tf.tidy(() => tf.variable(tf.ones([2, 3]), true, 'bad/W'));
    const s = plugin.init({ name: 'bad/W', shape: [2, 3], role: 'matrix' });
    const g = tf.ones([3, 2]);
    expect(() => plugin.update(p, g, s, 1)).toThrow(/grad has shape \[3,2\]/);
    expect(() => plugin.update(p, g, {}, 1)).toThrow(/lacks exp_avg_sq_row, exp_avg_sq_col/);
    expect(() => lomo().update(p, g, {}, 0)).toThrow(/step = 0 is invalid/);
    tf.dispose([p, g, ...Object.values(s)]);
  });

  it('stateBytes: LOMO 0; AdaLomo 4(m+n) matrices, 4·B(m+n) rank > 2, 4n vectors — equal to the measured state', () => {
    const plugin = adalomo();
    for (const shape of [[32, 24], [24], [4, 6, 5], [50, 16], [], [1, 1]]) {
      const s = plugin.init({ name: `bytes/${shape.join('x')}`, shape, role: 'other' });
      expect(uniqueBufferBytes(Object.values(s))).toBe(plugin.stateBytes(shape));
      expect(adalomoStateBytes(shape)).toBe(plugin.stateBytes(shape));
      tf.dispose(Object.values(s));
    }
    expect(adalomoStateBytes([32, 24])).toBe(4 * (32 + 24));
    expect(adalomoStateBytes([4, 6, 5])).toBe(4 * (4 * 6 + 4 * 5));
    expect(adalomoStateBytes([24])).toBe(96);
    expect(lomo().stateBytes([768, 768])).toBe(0);
    expect(lomoStateBytes([50257, 768])).toBe(0);
    expect(Object.keys(lomo().init({ name: 'x', shape: [4], role: 'vector' }))).toEqual([]);
    expect(numel([768, 3072])).toBe(2359296);
  });
});
