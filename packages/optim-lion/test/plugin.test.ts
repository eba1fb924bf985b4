import { InputError, ShapeError } from '@kstar/core';
import type { BadOptionsCase } from '@kstar/testkit';
import {
  callUntyped,
  expectOptimizerPluginNamed,
  expectScheduledLearningRate,
  expectStateBytesMeasured,
  expectUpdatesLeakNothing,
  itRefusesInheritedOptionNames,
  itRejectsBadOptions,
  onBackend,
} from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { lion, lionFromReferenceHparams, lionKernel, lionStateBytes, lionUpdate } from '../src/index.ts';
import {
  goldenLionRuns,
  type LionHp,
  lionStep64,
  numel,
  randn,
  relErr,
  rng,
  signAwareErr,
} from './helpers.ts';
import { aliasingCheck } from './parity.ts';
import { expectGolden, replayLion, summary } from './replay.ts';

const TOL = 1e-5;
onBackend('cpu');

const variable = (values: ArrayLike<number>, shape: number[], name?: string) =>
  tf.tidy(() => tf.variable(tf.tensor(Float32Array.from(values), shape), true, name));

describe('lion plugin: golden replay (lion_pytorch.Lion, float64), cpu', () => {
  it('every golden Lion run: ≤ 0.1% elements differ in direction, the rest within 1e-5 of RMS (native kernel)', async () => {
    const { runs } = goldenLionRuns();
    for (const { run, index } of runs) {
      const plugin = callUntyped(lionFromReferenceHparams, run.hparams);
      if (index === 6) {
        expect(plugin.hparams).toEqual({
          lr: 0.001,
          beta1: 0.9,
          beta2: 0.99,
          weightDecay: 0.1,
          decoupledWeightDecay: false,
        });
      }
      const before = tf.memory().numTensors;
      const r = await replayLion({ kind: 'plugin', plugin }, `golden-cpu-${index}`, index);
      console.log(summary('plugin, cpu kernel', r));
      expect(tf.memory().numTensors).toBe(before);
      expect(Object.keys(r.errors).map(Number)).toEqual(run.after.map((a) => a.step));
      // The independent float64 reference reproduces lion_pytorch (so direction flips are measured against it).
      expect(r.reference64VsGolden).toBeLessThanOrEqual(1e-9);
      expectGolden(r, TOL, expect);
    }
  });

  it('the fallback (tfjs ops, float32 arithmetic) passes the same bar', async () => {
    const { runs } = goldenLionRuns();
    for (const { run, index } of runs) {
      const plugin = lion({
        ...callUntyped(lionFromReferenceHparams, run.hparams).hparams,
        impl: 'fallback',
      });
      const r = await replayLion({ kind: 'plugin', plugin }, `golden-cpu-fb-${index}`, index);
      console.log(summary('plugin, cpu fallback', r));
      expectGolden(r, TOL, expect);
    }
  });

  it('detects a wrong update: β1 and β2 swapped fails the bar (the test can fail)', async () => {
    const { runs } = goldenLionRuns();
    const h = runs[0]!.run.hparams;
    const plugin = lion({ lr: h.lr, beta1: h.beta2, beta2: h.beta1, weightDecay: h.weight_decay });
    const r = await replayLion({ kind: 'plugin', plugin }, 'golden-wrong', runs[0]!.index);
    expect(r.worstDifferingFraction).toBeGreaterThan(1e-3);
  });
});

describe('lion: closed-form checks (lion_pytorch / keras lion_test.py)', () => {
  for (const impl of ['auto', 'fallback'] as const) {
    it(`keras test_single_step: lr 0.5, g = [1, 6, 7, 2], x = [1, 2, 3, 4] → [0.5, 1.5, 2.5, 3.5] (${impl})`, () => {
      const plugin = lion({ lr: 0.5, impl });
      const x = variable([1, 2, 3, 4], [4], `keras-single-${impl}`);
      const s = plugin.init({ name: x.name, shape: [4], role: 'vector' });
      const g = tf.tensor([1, 6, 7, 2]);
      expect(lionKernel.which({ param: x, grad: g, m: s.m, hp: { ...plugin.hparams } }, { impl })).toBe(
        impl === 'auto' ? 'native' : 'fallback',
      );
      plugin.update(x, g, s, 1);
      expect(Array.from(x.dataSync())).toEqual([0.5, 1.5, 2.5, 3.5]);
      // m after the step: (1 − β2)·g = 0.01·g.
      const m = s.m.dataSync();
      [1, 6, 7, 2].forEach((gi, i) => {
        expect(m[i]).toBeCloseTo(0.01 * gi, 7);
      });
      tf.dispose([x, g, s.m]);
    });

    it(`keras test_correctness_with_golden: x = 1, g₁ = 0.01, then arange(0.1, 1.1, 0.1): x drops 1e-3 a step (${impl})`, () => {
      const plugin = lion({ lr: 1e-3, impl });
      const x = variable(new Array(10).fill(1), [10], `keras-golden-${impl}`);
      const s = plugin.init({ name: x.name, shape: [10], role: 'vector' });
      const first = tf.fill([10], 0.01);
      const rest = tf.tensor(Array.from({ length: 10 }, (_, i) => 0.1 * (i + 1)));
      for (let t = 1; t <= 5; t++) {
        plugin.update(x, t === 1 ? first : rest, s, t);
        for (const v of x.dataSync()) expect(v).toBeCloseTo(1 - 1e-3 * t, 6);
      }
      tf.dispose([x, s.m, first, rest]);
    });

    it(`g = 0 with m = 0 does not move p (wd 0); with wd it only decays, p·(1 − lr·λ) (${impl})`, () => {
      const init = [0.75, -1.5, 3, 0];
      for (const weightDecay of [0, 0.5]) {
        const plugin = lion({ lr: 0.25, weightDecay, impl });
        const x = variable(init, [4], `zero-grad-${impl}-${weightDecay}`);
        const s = plugin.init({ name: x.name, shape: [4], role: 'vector' });
        const g = tf.zeros([4]);
        plugin.update(x, g, s, 1);
        expect(Array.from(x.dataSync())).toEqual(init.map((v) => v * (1 - 0.25 * weightDecay)));
        expect(Array.from(s.m.dataSync())).toEqual([0, 0, 0, 0]);
        tf.dispose([x, g, s.m]);
      }
    });

    it(`|Δp| = lr exactly per element with wd 0, at every step, whatever the gradient scale (${impl})`, () => {
      // lr = 2⁻¹⁰ and p on the 2⁻¹⁰ grid below 2: p ± lr is exact in float32, so "exactly" means bit-exact.
      const lr = 2 ** -10;
      const plugin = lion({ lr, beta1: 0.9, beta2: 0.99, impl });
      const next = rng(5);
      const n = 257;
      const init = Array.from({ length: n }, () => Math.round((next() - 0.5) * 1024) / 1024);
      const x = variable(init, [n], `exact-step-${impl}`);
      const s = plugin.init({ name: x.name, shape: [n], role: 'vector' });
      for (let t = 1; t <= 6; t++) {
        const before = Float32Array.from(x.dataSync());
        const gv = randn(next, n, 10 ** (t - 4)); // 1e-3 … 1e2
        const g = tf.tensor(gv);
        plugin.update(x, g, s, t);
        g.dispose();
        const after = x.dataSync();
        for (let i = 0; i < n; i++) expect(Math.abs(after[i]! - before[i]!)).toBe(lr);
      }
      tf.dispose([x, s.m]);
    });
  }

  it('sign(0) = 0: an element with c = 0 exactly (m = −(1−β1)/β1 · g) stays put', () => {
    // β1 = 0.5: c = 0.5·m + 0.5·g = 0 when m = −g; reached from m = 0 with β2 = 0 after one step of g₁ = −g₂.
    const plugin = lion({ lr: 0.125, beta1: 0.5, beta2: 0 });
    const x = variable([1, 1, 1], [3], 'sign-zero');
    const s = plugin.init({ name: x.name, shape: [3], role: 'vector' });
    const g1 = tf.tensor([1, -2, 0.5]);
    const g2 = tf.tensor([-1, 2, 1]);
    plugin.update(x, g1, s, 1); // m = g1
    expect(Array.from(x.dataSync())).toEqual([0.875, 1.125, 0.875]);
    plugin.update(x, g2, s, 2); // c = 0.5·g1 + 0.5·g2 = [0, 0, 0.75]
    expect(Array.from(x.dataSync())).toEqual([0.875, 1.125, 0.75]);
    tf.dispose([x, s.m, g1, g2]);
  });
});

describe('lion: native kernel vs fallback vs float64 reference (cpu)', () => {
  it('random shapes, 8 steps, wd and decoupled wd with a schedule: agree, no direction differs', () => {
    const rows: string[] = [];
    const cases: { shape: number[]; options: Parameters<typeof lion>[0]; lrs: number[] }[] = [
      { shape: [1], options: { lr: 1e-2, weightDecay: 0.1 }, lrs: [1e-2] },
      { shape: [7], options: { lr: 3e-3, beta1: 0.95, beta2: 0.98, weightDecay: 1 }, lrs: [3e-3] },
      { shape: [33, 65], options: { lr: 1e-3, weightDecay: 0.3 }, lrs: [1e-3, 5e-4, 2.5e-4] },
      {
        shape: [4, 5, 6],
        options: { lr: 2e-3, weightDecay: 2e-4, decoupledWeightDecay: true },
        lrs: [2e-3, 1e-3, 4e-3],
      },
    ];
    for (const [ci, { shape, options, lrs }] of cases.entries()) {
      const n = numel(shape);
      const next = rng(100 + ci);
      const init = randn(next, n);
      const nat = lion(options);
      const fb = lion({ ...options, impl: 'fallback' });
      const pn = variable(init, shape, `parity-n-${ci}`);
      const pf = variable(init, shape, `parity-f-${ci}`);
      const sn = nat.init({ name: pn.name, shape, role: 'other' });
      const sf = fb.init({ name: pf.name, shape, role: 'other' });
      const ref = { p: Float64Array.from(init), m: new Float64Array(n) };
      const lr0 = options!.lr!;
      for (let t = 1; t <= 8; t++) {
        const lr = lrs[(t - 1) % lrs.length]!;
        nat.learningRate = lr;
        fb.learningRate = lr;
        const gv = randn(next, n, 0.1);
        if (t === 3) gv.fill(0, 0, Math.min(n, 3)); // zero gradients next to a non-zero momentum
        const g = tf.tensor(gv, shape);
        const buffers = tf.memory().numDataBuffers;
        expect(lionKernel.which({ param: pn, grad: g, m: sn.m, hp: { ...nat.hparams } })).toBe('native');
        nat.update(pn, g, sn, t);
        expect(tf.memory().numDataBuffers).toBe(buffers); // in place: no buffer created or freed
        fb.update(pf, g, sf, t);
        g.dispose();
        const wd = options!.decoupledWeightDecay ? options!.weightDecay! / lr0 : (options!.weightDecay ?? 0);
        const hp: LionHp = { lr, beta1: nat.hparams.beta1, beta2: nat.hparams.beta2, weightDecay: wd };
        lionStep64(ref.p, gv, ref.m, hp);
      }
      const en = signAwareErr(pn.dataSync(), ref.p, lr0);
      const ef = signAwareErr(pf.dataSync(), ref.p, lr0);
      const enf = signAwareErr(pn.dataSync(), pf.dataSync(), lr0);
      const mErr = relErr(sn.m.dataSync(), ref.m);
      const mErrF = relErr(sf.m.dataSync(), ref.m);
      rows.push(
        `[${shape}] native-vs-f64 ${en.relErr.toExponential(1)} (${en.differing} differ) fallback-vs-f64 ${ef.relErr.toExponential(1)} (${ef.differing}) native-vs-fallback ${enf.relErr.toExponential(1)} (${enf.differing}) m ${mErr.toExponential(1)}/${mErrF.toExponential(1)}`,
      );
      for (const e of [en, ef, enf]) {
        expect(e.differing).toBe(0);
        expect(e.relErr).toBeLessThanOrEqual(1e-6);
      }
      expect(mErr).toBeLessThanOrEqual(1e-6);
      expect(mErrF).toBeLessThanOrEqual(1e-6);
      // 8 steps of ±lr: p moved far above the tolerance, so a wrong update cannot pass.
      expect(relErr(init, ref.p)).toBeGreaterThan(1e-3);
      tf.dispose([pn, pf, sn.m, sf.m]);
    }
    console.log(`[optim-lion] cpu parity:\n${rows.join('\n')}`);
  });

  it('a live clone of p forces the fallback (the clone keeps its values); in place again once it is gone', () =>
    aliasingCheck('alias'));

  it('lionUpdate validates shapes, dtypes and hyper-parameters', () => {
    const p = variable([1, 2], [2], 'validate/p');
    const m = tf.tidy(() => tf.variable(tf.zeros([2]), false, 'validate/p/m'));
    const hp = { lr: 0.1, beta1: 0.9, beta2: 0.99, weightDecay: 0 };
    const g3 = tf.ones([3]);
    const gi = tf.ones([2], 'int32');
    const g = tf.ones([2]);
    expect(() => lionUpdate(p, g3, m, hp)).toThrow(ShapeError);
    expect(() => lionUpdate(p, gi, m, hp)).toThrow(/dtype int32/);
    expect(() => lionUpdate(p, g, m, { ...hp, beta1: 1.5 })).toThrow(InputError);
    expect(() => lionUpdate(p, g, m, { ...hp, weightDecay: -1 })).toThrow(InputError);
    expect(Array.from(p.dataSync())).toEqual([1, 2]);
    tf.dispose([p, m, g3, gi, g]);
  });
});

describe('lion plugin: contract', () => {
  it('states its kind, version, name and hyper-parameters (lion_pytorch defaults)', () => {
    const p = lion();
    expectOptimizerPluginNamed(p, 'lion');
    expect(p.hparams).toEqual({
      lr: 1e-4,
      beta1: 0.9,
      beta2: 0.99,
      weightDecay: 0,
      decoupledWeightDecay: false,
    });
    expect(p.describe()).toMatchObject({
      lr: 1e-4,
      beta1: 0.9,
      beta2: 0.99,
      weightDecay: 0,
      stateBytesPerElement: 4,
    });
    expect(p.needsAllGradients).toBeFalsy();
  });

  it('state: one non-trainable zero variable <param>/m, the only holder of its buffer', () => {
    const s = lion().init({ name: 'names/W', shape: [3, 4], role: 'matrix' });
    expect(Object.keys(s)).toEqual(['m']);
    expect(s.m.name).toBe('names/W/m');
    expect(s.m.trainable).toBe(false);
    expect(s.m.dtype).toBe('float32');
    expect(s.m.shape).toEqual([3, 4]);
    expect(Array.from(s.m.dataSync())).toEqual(new Array(12).fill(0));
    expect(tf.backend().refCount(s.m.dataId)).toBe(1);
    const s2 = lion().init({ name: 'names/W', shape: [3, 4], role: 'matrix' });
    expect(s2.m.name).toBe('names/W/m_1');
    tf.dispose([s.m, s2.m]);
  });

  it('stateBytes(shape) = 4 × numel equals the measured unique state bytes for every golden shape', () => {
    const { golden } = goldenLionRuns();
    const plugin = lion({ lr: 1e-3, weightDecay: 0.1 });
    const rows = expectStateBytesMeasured(plugin, golden.shapes);
    for (const shape of Object.values(golden.shapes)) expect(plugin.stateBytes(shape)).toBe(4 * numel(shape));
    console.log(`[optim-lion] state bytes: ${rows.join('; ')}`);
    expect(lionStateBytes([768, 3072])).toBe(4 * 768 * 3072);
    expect(lionStateBytes([])).toBe(4);
  });

  it('leaks nothing: numTensors grows only by the state at init, stays put over updates (native and fallback)', () => {
    expectUpdatesLeakNothing(lion({ lr: 0.05, weightDecay: 0.1 }), [8, 8]);
  });

  it('updates in place on cpu: p and m keep their buffers (dataId), no new buffer; the fallback peaks at ≤ 3 param-sized temporaries', async () => {
    const plugin = lion({ lr: 0.01 });
    const shape = [64, 32];
    const paramBytes = numel(shape) * 4;
    const p = variable(new Array(numel(shape)).fill(1), shape, 'inplace/W');
    const s = plugin.init({ name: 'inplace/W', shape, role: 'matrix' });
    const ids = [p.dataId, s.m.dataId];
    const g = tf.fill(shape, 0.5);
    let base = tf.memory().numBytes;
    const buffers = tf.memory().numDataBuffers;
    let buffersDuring = 0;
    const native = await tf.profile(() => {
      plugin.update(p, g, s, 1);
      buffersDuring = tf.memory().numDataBuffers;
    });
    expect(buffersDuring).toBe(buffers);
    expect([p.dataId, s.m.dataId]).toEqual(ids);
    expect(p.dataSync()[0]).toBeCloseTo(0.99, 7);
    expect(tf.memory().numBytes).toBe(base);
    const nativePeak = native.peakBytes - base;
    base = tf.memory().numBytes;
    const fb = lion({ lr: 0.01, impl: 'fallback' });
    const fallback = await tf.profile(() => fb.update(p, g, s, 2));
    const fallbackPeak = fallback.peakBytes - base;
    console.log(
      `[optim-lion] transient bytes of one [${shape}] update (cpu): native kernel ${nativePeak} B logical (the two aliases of p and m the engine wraps; no new buffer); fallback ${fallbackPeak} B = ${(fallbackPeak / paramBytes).toFixed(3)}× the parameter`,
    );
    // tfjs counts bytes per Tensor wrapper: the kernel's two outputs alias p and m (no buffer is allocated).
    expect(nativePeak).toBeLessThanOrEqual(2 * paramBytes);
    expect(native.newBytes).toBe(0);
    expect(fallbackPeak).toBeLessThanOrEqual(3 * paramBytes + 64);
    expect(tf.memory().numBytes).toBe(base);
    tf.dispose([p, g, s.m]);
  });

  it('learningRate (contract field for schedules) is settable, validated, and used by the next update', () => {
    const plugin = lion({ lr: 0.1 });
    expectScheduledLearningRate(plugin, { initial: 0.1, next: 0.25 }, [0.5, -2, 3], (p) => {
      expect(Array.from(p)).toEqual([0.75, 1.25, 0.75]);
    });
    expect(plugin.initialLearningRate).toBe(0.1);
  });

  it('decoupledWeightDecay: λ/lr₀ (lion_pytorch), so the decay follows the schedule ratio, not lr itself', () => {
    const plugin = lion({ lr: 0.01, weightDecay: 0.001, decoupledWeightDecay: true });
    const p = variable([2], [1], 'decoupled/b');
    const s = plugin.init({ name: p.name, shape: [1], role: 'vector' });
    const g = tf.zeros([1]);
    plugin.update(p, g, s, 1); // decay 1 − 0.01·(0.001/0.01) = 0.999
    expect(p.dataSync()[0]).toBeCloseTo(2 * 0.999, 6);
    plugin.learningRate = 0.005; // decay 1 − 0.005·0.1 = 0.9995
    plugin.update(p, g, s, 2);
    expect(p.dataSync()[0]).toBeCloseTo(2 * 0.999 * 0.9995, 6);
    tf.dispose([p, g, s.m]);
  });

  it('does not dispose the gradient; rejects state it did not create and a bad step', () => {
    const plugin = lion();
    const p = variable([1, 1, 1, 1], [4], 'keep/b');
    const s = plugin.init({ name: 'keep/b', shape: [4], role: 'vector' });
    const g = tf.ones([4]);
    plugin.update(p, g, s, 1);
    expect(g.isDisposed).toBe(false);
    expect(() => plugin.update(p, g, {}, 2)).toThrow(InputError);
    expect(() => plugin.update(p, g, s, 0)).toThrow(InputError);
    expect(() => plugin.update(p, g, s, 1.5)).toThrow(InputError);
    tf.dispose([p, g, s.m]);
  });
});

describe('lion plugin: bad options → InputError', () => {
  const bad: BadOptionsCase[] = [
    ['lr 0', { lr: 0 }, /lr = 0 .*> 0/],
    ['lr negative', { lr: -1e-3 }, /lr = -0\.001/],
    ['lr infinite', { lr: Number.POSITIVE_INFINITY }, /lr = Infinity/],
    ['lr NaN', { lr: Number.NaN }, /lr = NaN/],
    ['lr string', { lr: '1e-3' }, /lr = "1e-3"/],
    ['beta1 > 1', { beta1: 1.01 }, /beta1 = 1\.01 .*\[0, 1\]/],
    ['beta1 < 0', { beta1: -0.1 }, /beta1 = -0\.1/],
    ['beta2 = 1.5', { beta2: 1.5 }, /beta2 = 1\.5/],
    ['weightDecay < 0', { weightDecay: -0.01 }, /weightDecay = -0\.01 .*≥ 0/],
    [
      'decoupledWeightDecay not boolean',
      { decoupledWeightDecay: 1 },
      /decoupledWeightDecay = 1 .*true or false/,
    ],
    ['unknown option', { learningRate: 0.1 }, /unknown option 'learningRate'/],
    ['impl', { impl: 'gpu' }, /impl = "gpu"/],
  ];
  itRejectsBadOptions(lion, bad);

  it('accepts lion_pytorch’s edge values β = 0 and β = 1, λ = 0', () => {
    expect(lion({ beta1: 0, beta2: 1, weightDecay: 0 }).hparams).toMatchObject({ beta1: 0, beta2: 1 });
  });

  it('reference names: weight_decay, betas, decoupled_weight_decay, use_triton; unknown keys and bad values rejected', () => {
    expect(
      lionFromReferenceHparams({
        lr: 3e-4,
        betas: [0.95, 0.98],
        weight_decay: 0.3,
        decoupled_weight_decay: true,
        use_triton: true,
      }).hparams,
    ).toEqual({ lr: 3e-4, beta1: 0.95, beta2: 0.98, weightDecay: 0.3, decoupledWeightDecay: true });
    expect(lionFromReferenceHparams({}).hparams.lr).toBe(1e-4);
    expect(() => callUntyped(lionFromReferenceHparams, { eps: 1e-8 })).toThrow(InputError);
    expect(() => lionFromReferenceHparams({ weight_decay: -1 })).toThrow(/weightDecay = -1/);
    expect(() => callUntyped(lionFromReferenceHparams, { betas: [0.9] })).toThrow(InputError);
    expect(() => lionFromReferenceHparams({ betas: [0.9, 0.99], beta1: 0.9 })).toThrow(InputError);
    expect(() => callUntyped(lionFromReferenceHparams, { use_triton: 'yes' })).toThrow(InputError);
    expect(() => callUntyped(lionFromReferenceHparams, null)).toThrow(InputError);
  });
});

itRefusesInheritedOptionNames(lion);
