import { InputError } from '@kstar/core';
import type { BadOptionsCase } from '@kstar/testkit';
import {
  callUntyped,
  expectOptimizerPluginNamed,
  expectStateBytesMeasured,
  expectUpdatesLeakNothing,
  itRefusesInheritedOptionNames,
  itRejectsBadOptions,
  onBackend,
} from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  adafactor,
  adafactorFromReferenceHparams,
  adafactorKernel,
  adafactorStateBytes,
} from '../src/index.ts';
import { Adafactor64, goldenAdafactorRuns, numel, randn, relErr, rng } from './helpers.ts';
import {
  checkParity,
  formatParity,
  goldenCheck,
  parity,
  referenceHparams,
  replayPlugin,
  TOL,
} from './replay.ts';

onBackend('cpu');

describe('adafactor plugin: golden replay (transformers Adafactor, float64)', () => {
  it('both runs match every recorded step within 1e-5 of RMS(p_ref) through the cpu kernel', async () => {
    const before = tf.memory().numTensors;
    const results = await goldenCheck('cpu');
    expect(results.map((r) => r.index)).toEqual([3, 4]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('both runs match through the tfjs-ops fallback as well', async () => {
    await goldenCheck('cpu', undefined, 'fallback');
  });

  it('is sensitive: flipping one switch misses the golden by far more than the tolerance', async () => {
    const { runs } = goldenAdafactorRuns();
    const [r3, r4] = [runs[0]!.run.hparams, runs[1]!.run.hparams];
    const variants: [number, Record<string, unknown>][] = [
      [3, { ...r3, scale_parameter: false }],
      [3, { ...r3, warmup_init: true }],
      [3, { ...r3, decay_rate: -0.5 }],
      [4, { ...r4, beta1: null }],
      [4, { ...r4, clip_threshold: 0.5 }],
      [4, { ...r4, weight_decay: 0.5 }],
    ];
    for (const [index, h] of variants) {
      const r = await replayPlugin(
        callUntyped(adafactorFromReferenceHparams, h),
        index,
        `golden-sens-${index}`,
      );
      expect(r.worst, JSON.stringify(h)).toBeGreaterThan(30 * TOL);
    }
  });

  it('the float64 reference used below reproduces the golden to ~1e-12 (it is a faithful HF Adafactor)', () => {
    const { golden, runs } = goldenAdafactorRuns();
    let worst = 0;
    for (const { run, index } of runs) {
      for (const name of run.params_used) {
        const p = Float64Array.from(golden.init[name]!);
        const ref = new Adafactor64(golden.shapes[name]!, referenceHparams(index));
        for (let t = 1; t <= golden.grads.length; t++) {
          ref.update(p, golden.grads[t - 1]![name]!);
          const rec = run.after.find((a) => a.step === t);
          if (rec) worst = Math.max(worst, relErr(p, rec.params[name]!));
        }
      }
    }
    console.log(`[optim-adafactor] float64 reference vs golden: worst ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-10);
  });
});

describe('adafactor plugin: native kernel vs fallback vs float64 reference (cpu)', () => {
  it('agree within 1e-5 for every switch, on matrices, 3-D/4-D, m or n = 1, vectors and a scalar', async () => {
    const rows = await parity();
    console.log(formatParity('cpu', rows));
    checkParity(rows);
  });
});

describe('adafactor plugin: first-step closed forms (β̂2 = 0 at t = 1)', () => {
  it('vector: V = g² + eps1 exactly, U = sign(g), p1 = p0 − 1e-2·RMS(p0)·sign(g)', () => {
    const plugin = adafactor();
    const p0 = [0.5, -1, 2, 0.25, -0.75];
    const g = [3, -0.01, 4e-4, -2, 7];
    const p = tf.tidy(() => tf.variable(tf.tensor(p0), true, 'first/b'));
    const s = plugin.init({ name: 'first/b', shape: [5], role: 'vector' });
    const gt = tf.tensor(g);
    plugin.update(p, gt, s, 1);
    const rms = Math.sqrt(p0.reduce((a, x) => a + x * x, 0) / 5);
    const got = p.dataSync();
    const v = s.exp_avg_sq!.dataSync();
    for (let i = 0; i < 5; i++) {
      const gf = Math.fround(g[i]!);
      expect(v[i]).toBe(Math.fround(gf * gf + 1e-30));
      expect(got[i]).toBeCloseTo(p0[i]! - 1e-2 * rms * Math.sign(g[i]!), 6);
    }
    tf.dispose([p, gt, ...Object.values(s)]);
  });

  it('matrix with a rank-one gradient: the factored V̂ is exact, so U = sign(g) and p1 = p0 − alpha·sign(g)', () => {
    const a = [1, -2, 0.5];
    const b = [0.3, 1, -4, 2];
    const g = a.flatMap((x) => b.map((y) => x * y));
    const p0 = Array.from(randn(rng(5), 12, 0.2));
    const lr = 0.03;
    const plugin = adafactor({ relativeStep: false, scaleParameter: false, lr });
    const p = tf.tidy(() => tf.variable(tf.tensor(p0, [3, 4]), true, 'first/W'));
    const s = plugin.init({ name: 'first/W', shape: [3, 4], role: 'matrix' });
    const gt = tf.tensor(g, [3, 4]);
    plugin.update(p, gt, s, 1);
    const got = p.dataSync();
    for (let i = 0; i < 12; i++) expect(got[i]).toBeCloseTo(p0[i]! - lr * Math.sign(g[i]!), 6);
    // R = row means of g², C = column means of g² (means, not sums).
    const rowMeans = a.map((x) => (x * x * b.reduce((s2, y) => s2 + y * y, 0)) / 4);
    const r = s.exp_avg_sq_row!.dataSync();
    for (let i = 0; i < 3; i++) expect(r[i]).toBeCloseTo(rowMeans[i]!, 5);
    tf.dispose([p, gt, ...Object.values(s)]);
  });

  it('update clipping: a vector with one big and many zero gradients is clipped to RMS(U) = clipThreshold', () => {
    // U = sign(g) on the non-zero entry only: RMS(U) = 1/√n < 1 → no clip; with clip 0.1 and n = 4: RMS 0.5 → ×0.2.
    const plugin = adafactor({ relativeStep: false, scaleParameter: false, lr: 1, clipThreshold: 0.1 });
    const p = tf.tidy(() => tf.variable(tf.zeros([4]), true, 'clip/b'));
    const s = plugin.init({ name: 'clip/b', shape: [4], role: 'vector' });
    const gt = tf.tensor([5, 0, 0, 0]);
    plugin.update(p, gt, s, 1);
    expect(p.dataSync()[0]).toBeCloseTo(-0.2, 6);
    expect(Array.from(p.dataSync()).slice(1)).toEqual([0, 0, 0]);
    tf.dispose([p, gt, ...Object.values(s)]);
  });
});

describe('adafactor plugin: state bytes', () => {
  it('stateBytes(shape) equals the measured unique state bytes for every golden shape, with and without beta1', () => {
    const { golden } = goldenAdafactorRuns();
    const rows: string[] = [];
    for (const beta1 of [null, 0.9]) {
      const plugin = beta1 == null ? adafactor() : adafactor({ relativeStep: false, lr: 0.01, beta1 });
      // Still true after an update (the kernel writes in place).
      rows.push(...expectStateBytesMeasured(plugin, golden.shapes, { tag: ` β1=${beta1}` }));
    }
    console.log(`[optim-adafactor] state bytes: ${rows.join('; ')}`);
    // The formulas: 4(m+n) per matrix; batched 4·B(m+n) for [B, m, n]; 4n vectors; +4·numel with beta1.
    expect(adafactorStateBytes([32, 24])).toBe(4 * (32 + 24));
    expect(adafactorStateBytes([4, 6, 5])).toBe(4 * (4 * 6 + 4 * 5));
    expect(adafactorStateBytes([24])).toBe(4 * 24);
    expect(adafactorStateBytes([32, 24], true)).toBe(4 * (32 + 24) + 4 * 32 * 24);
    expect(adafactorStateBytes([768, 3072])).toBe(4 * (768 + 3072));
    expect(adafactorStateBytes([])).toBe(4);
  });
});

describe('adafactor plugin: contract', () => {
  it('states its kind, version, name and HF default hyper-parameters', () => {
    const p = adafactor();
    expectOptimizerPluginNamed(p, 'adafactor');
    expect(p.hparams).toEqual({
      lr: null,
      relativeStep: true,
      warmupInit: false,
      scaleParameter: true,
      beta1: null,
      clipThreshold: 1,
      decayRate: -0.8,
      eps1: 1e-30,
      eps2: 1e-3,
      weightDecay: 0,
    });
    expect(p.describe()).toMatchObject({ relativeStep: true, lr: null });
    expect(p.needsAllGradients).toBeFalsy();
  });

  it('state: HF keys, shapes of the last-two-dims factoring, non-trainable zeros, refCount 1', () => {
    const plugin = adafactor({ relativeStep: false, lr: 0.1, beta1: 0.9 });
    const s = plugin.init({ name: 'names/T', shape: [4, 6, 5], role: 'other' });
    expect(Object.keys(s).sort()).toEqual(['exp_avg', 'exp_avg_sq_col', 'exp_avg_sq_row']);
    expect(s.exp_avg_sq_row!.shape).toEqual([4, 6]);
    expect(s.exp_avg_sq_col!.shape).toEqual([4, 5]);
    expect(s.exp_avg!.shape).toEqual([4, 6, 5]);
    for (const [k, t] of Object.entries(s) as [string, tf.Variable][]) {
      expect(t.name).toBe(`names/T/${k}`);
      expect(t.trainable).toBe(false);
      expect(Array.from(t.dataSync()).every((x) => x === 0)).toBe(true);
      expect(tf.backend().refCount(t.dataId)).toBe(1);
    }
    const v = adafactor().init({ name: 'names/b', shape: [7], role: 'vector' });
    expect(Object.keys(v)).toEqual(['exp_avg_sq']);
    tf.dispose([...Object.values(s), ...Object.values(v)]);
  });

  it('leaks nothing and updates in place (dataIds kept), also through the fallback when a clone is alive', () => {
    for (const shape of [[8, 8], [8]]) {
      const plugin = adafactor({ relativeStep: false, lr: 0.05, beta1: 0.5, weightDecay: 0.1 });
      expectUpdatesLeakNothing(plugin, shape, {
        whileCloned: (p, g, s) =>
          expect(callUntyped(adafactorKernel.which, { param: p, grad: g, state: s, hp: {} })).toBe(
            'fallback',
          ),
      });
    }
  });

  it('rejects state it did not create and state of another shape', () => {
    const plugin = adafactor();
    const p = tf.tidy(() => tf.variable(tf.ones([2, 3]), true, 'bad-state/W'));
    const g = tf.ones([2, 3]);
    expect(() => plugin.update(p, g, {}, 1)).toThrow(InputError);
    const wrong = plugin.init({ name: 'bad-state/other', shape: [3, 2], role: 'matrix' });
    expect(() => plugin.update(p, g, wrong, 1)).toThrow(/shape|expected/);
    expect(() =>
      plugin.update(p, g, plugin.init({ name: 'bad-state/x', shape: [2, 3], role: 'matrix' }), 0),
    ).toThrow(InputError);
    tf.dispose([p, g, ...Object.values(wrong)]);
    // clean up the state created inline above
    for (const name of ['bad-state/x/exp_avg_sq_row', 'bad-state/x/exp_avg_sq_col'])
      tf.engine().registeredVariables[name]?.dispose();
  });

  it('learningRate: absent with relativeStep (schedules skip it); present, validated and used without', () => {
    const rel = adafactor();
    expect('learningRate' in rel).toBe(false);
    expect(() => {
      (rel as { learningRate?: number }).learningRate = 0.1;
    }).toThrow(TypeError);
    const ext = adafactor({ relativeStep: false, scaleParameter: false, lr: 0.1 });
    expect('learningRate' in ext).toBe(true);
    expect(ext.learningRate).toBe(0.1);
    expect(() => {
      ext.learningRate = -1;
    }).toThrow(InputError);
    expect(() => {
      Reflect.set(ext, 'learningRate', null); // what a JavaScript caller may assign
    }).toThrow(InputError);
    ext.learningRate = 0.2;
    expect(ext.hparams.lr).toBe(0.2);
    // Step 1 without scale: vector U = sign(g), so p moves by exactly lr.
    const p = tf.tidy(() => tf.variable(tf.ones([3]), true, 'sched/b'));
    const s = ext.init({ name: 'sched/b', shape: [3], role: 'vector' });
    const g = tf.tensor([0.5, 2, 3]);
    ext.update(p, g, s, 1);
    for (const x of p.dataSync()) expect(x).toBeCloseTo(0.8, 6);
    tf.dispose([p, g, ...Object.values(s)]);
  });
});

describe('adafactor plugin: bad options → InputError', () => {
  const bad: BadOptionsCase[] = [
    ['lr with relativeStep (HF ValueError)', { lr: 1e-3 }, /cannot be combined with relativeStep = true/],
    [
      'warmupInit without relativeStep (HF ValueError)',
      { relativeStep: false, lr: 1e-3, warmupInit: true },
      /warmupInit = true requires relativeStep = true/,
    ],
    ['no lr without relativeStep', { relativeStep: false }, /lr = null is invalid with relativeStep = false/],
    ['lr 0', { relativeStep: false, lr: 0 }, /lr = 0 is invalid/],
    ['lr NaN', { relativeStep: false, lr: Number.NaN }, /lr = NaN/],
    ['lr string', { relativeStep: false, lr: '1e-3' }, /lr = "1e-3"/],
    ['beta1 = 1', { beta1: 1 }, /beta1 = 1 .*\[0, 1\)/],
    ['beta1 < 0', { beta1: -0.1 }, /beta1 = -0\.1/],
    ['clipThreshold 0', { clipThreshold: 0 }, /clipThreshold = 0 .*> 0/],
    ['decayRate > 0', { decayRate: 0.8 }, /decayRate = 0\.8 .*≤ 0/],
    ['eps1 0', { eps1: 0 }, /eps1 = 0 .*> 0/],
    ['eps2 < 0', { eps2: -1 }, /eps2 = -1 .*≥ 0/],
    ['weightDecay < 0', { weightDecay: -0.01 }, /weightDecay = -0\.01 .*≥ 0/],
    ['relativeStep not boolean', { relativeStep: 1 }, /relativeStep = 1 .*true or false/],
    ['unknown option', { learningRate: 0.1 }, /unknown option 'learningRate'/],
    ['impl', { impl: 'gpu' }, /impl = "gpu"/],
  ];
  itRejectsBadOptions(adafactor, bad);

  it('reference names: HF keys, eps pair or eps1/eps2, nulls; unknown keys and HF ValueErrors rejected', () => {
    const p = adafactorFromReferenceHparams({
      lr: 0.01,
      relative_step: false,
      scale_parameter: false,
      warmup_init: false,
      beta1: 0.9,
      clip_threshold: 1,
      decay_rate: -0.8,
      eps: [1e-30, 1e-3],
      weight_decay: 0.01,
    });
    expect(p.hparams).toMatchObject({
      lr: 0.01,
      relativeStep: false,
      beta1: 0.9,
      eps1: 1e-30,
      eps2: 1e-3,
      weightDecay: 0.01,
    });
    expect(adafactorFromReferenceHparams({ lr: null, beta1: null }).hparams.relativeStep).toBe(true);
    expect(() => adafactorFromReferenceHparams({ lr: 1e-3 })).toThrow(/relativeStep/);
    expect(() => adafactorFromReferenceHparams({ warmup_init: true, relative_step: false, lr: 1 })).toThrow(
      InputError,
    );
    expect(() => callUntyped(adafactorFromReferenceHparams, { amsgrad: true })).toThrow(
      /unknown hyper-parameter 'amsgrad'/,
    );
    expect(() => callUntyped(adafactorFromReferenceHparams, { eps: [1e-30] })).toThrow(InputError);
    expect(() => adafactorFromReferenceHparams({ eps: [1e-30, 1e-3], eps1: 1e-30 })).toThrow(
      /either eps or eps1/,
    );
  });
});

describe('adafactor plugin: a run longer than the golden one stays finite on an embedding-like parameter', () => {
  it('rows with exact-zero gradients (R ≈ eps1) give no NaN/Inf over 40 steps', () => {
    const plugin = adafactor({ relativeStep: false, scaleParameter: false, lr: 0.01, beta1: 0.9 });
    const shape = [50, 16];
    const p = tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, 0.02, 'float32', 1), true, 'emb/E'));
    const s = plugin.init({ name: 'emb/E', shape, role: 'embedding' });
    const next = rng(3);
    for (let t = 1; t <= 40; t++) {
      const g = randn(next, numel(shape));
      for (let r = 0; r < 50; r++) if (next() > 0.3) g.fill(0, r * 16, r * 16 + 16);
      const gt = tf.tensor(g, shape);
      plugin.update(p, gt, s, t);
      gt.dispose();
    }
    expect(Array.from(p.dataSync()).every(Number.isFinite)).toBe(true);
    tf.dispose([p, ...Object.values(s)]);
  });
});

itRefusesInheritedOptionNames(adafactor);
