import { InputError } from '@kstar/core';
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
import { adamw, adamwFromReferenceHparams, adamwStateBytes } from '../src/index.ts';
import type { Hp } from './helpers.ts';
import { adamwStep64, goldenAdamW, numel, randn, relErr, rng } from './helpers.ts';
import { replayPlugin } from './replay.ts';

const TOL = 1e-5;
onBackend('cpu');

describe('adamw plugin: golden replay (torch.optim.AdamW, float64)', () => {
  it('matches every recorded step within 1e-5 of RMS(p_ref), through the fused kernel', () => {
    const { run } = goldenAdamW();
    const plugin = adamwFromReferenceHparams(run.hparams);
    expect(plugin.hparams).toEqual({ lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    const before = tf.memory().numTensors;
    const r = replayPlugin(plugin, 'golden-plugin');
    expect(Object.keys(r.errors).map(Number)).toEqual(run.after.map((a) => a.step));
    console.log(
      `[optim-adamw] golden replay (plugin, cpu kernel) worst rel err ${r.worst.toExponential(3)}`,
      r.errors,
    );
    for (const perParam of Object.values(r.errors)) {
      for (const e of Object.values(perParam)) expect(e).toBeLessThanOrEqual(TOL);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('matches through the tfjs-ops fallback as well', () => {
    const { run } = goldenAdamW();
    const plugin = adamw({ ...adamwFromReferenceHparams(run.hparams).hparams, impl: 'fallback' });
    const r = replayPlugin(plugin, 'golden-plugin-fallback');
    console.log(`[optim-adamw] golden replay (plugin, fallback) worst rel err ${r.worst.toExponential(3)}`);
    expect(r.worst).toBeLessThanOrEqual(TOL);
  });

  it('is sensitive: dropping the weight decay (plain Adam) misses the golden by far more than the tolerance', () => {
    const { run } = goldenAdamW();
    const r = replayPlugin(
      adamwFromReferenceHparams({ ...run.hparams, weight_decay: 0 }),
      'golden-plugin-nowd',
    );
    expect(r.worst).toBeGreaterThan(100 * TOL);
  });

  it('the float64 reference used below reproduces the golden to ~1e-12 (it is a faithful AdamW)', () => {
    const { golden, run } = goldenAdamW();
    const hp: Hp = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
    let worst = 0;
    for (const name of run.params_used) {
      const p = Float64Array.from(golden.init[name]!);
      const m = new Float64Array(p.length);
      const v = new Float64Array(p.length);
      for (let t = 1; t <= golden.grads.length; t++) {
        adamwStep64(p, golden.grads[t - 1]![name]!, m, v, hp, t);
        const rec = run.after.find((a) => a.step === t);
        if (rec) worst = Math.max(worst, relErr(p, rec.params[name]!));
      }
    }
    expect(worst).toBeLessThan(1e-9);
  });
});

describe('adamw plugin: float64 JS reference over random data', () => {
  it('agrees within 1e-5 relative for 20 steps (non-default hyper-parameters)', () => {
    const hp: Hp = { lr: 3e-3, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 };
    const plugin = adamw(hp);
    const next = rng(1234);
    const shapes = { a: [17, 9], b: [5], c: [3, 2, 4] } as Record<string, number[]>;
    const ref: Record<string, { p: Float64Array; m: Float64Array; v: Float64Array }> = {};
    const vars: Record<string, tf.Variable> = {};
    const states: Record<string, tf.NamedTensorMap> = {};
    for (const [name, shape] of Object.entries(shapes)) {
      const p0 = Float32Array.from(randn(next, numel(shape), 0.5));
      ref[name] = {
        p: Float64Array.from(p0),
        m: new Float64Array(p0.length),
        v: new Float64Array(p0.length),
      };
      vars[name] = tf.tidy(() => tf.variable(tf.tensor(p0, shape), true, `rand/${name}`));
      states[name] = plugin.init({
        name: `rand/${name}`,
        shape,
        role: shape.length > 1 ? 'matrix' : 'vector',
      });
    }
    let worst = 0;
    for (let t = 1; t <= 20; t++) {
      for (const [name, shape] of Object.entries(shapes)) {
        // Gradients of varying scale per step (and exactly representable in float32 for both sides).
        const g = Float32Array.from(randn(next, numel(shape), 10 ** (((t % 5) - 2) as number)));
        const gt = tf.tensor(g, shape);
        plugin.update(vars[name]!, gt, states[name]!, t);
        gt.dispose();
        adamwStep64(ref[name]!.p, g, ref[name]!.m, ref[name]!.v, hp, t);
        worst = Math.max(worst, relErr(vars[name]!.dataSync(), ref[name]!.p));
        worst = Math.max(worst, relErr(states[name]!.m!.dataSync(), ref[name]!.m));
        worst = Math.max(worst, relErr(states[name]!.v!.dataSync(), ref[name]!.v));
      }
    }
    console.log(`[optim-adamw] float64 reference, 20 steps: worst rel err ${worst.toExponential(3)}`);
    expect(worst).toBeLessThanOrEqual(1e-5);
    tf.dispose([...Object.values(vars), ...Object.values(states).flatMap((s) => Object.values(s))]);
  });
});

describe('adamw plugin: contract', () => {
  it('states its kind, version, name and hyper-parameters', () => {
    const p = adamw();
    expectOptimizerPluginNamed(p, 'adamw');
    expect(p.hparams).toEqual({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    expect(p.describe()).toMatchObject({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    expect(p.needsAllGradients).toBeFalsy();
  });

  it('state: non-trainable zero variables named <param>/m and <param>/v, each the only holder of its buffer', () => {
    const s = adamw().init({ name: 'names/W', shape: [3, 4], role: 'matrix' });
    expect(Object.keys(s).sort()).toEqual(['m', 'v']);
    for (const [k, t] of [
      ['m', s.m],
      ['v', s.v],
    ] as const) {
      expect(t.name).toBe(`names/W/${k}`);
      expect(t.trainable).toBe(false);
      expect(t.dtype).toBe('float32');
      expect(t.shape).toEqual([3, 4]);
      expect(Array.from(t.dataSync())).toEqual(new Array(12).fill(0));
      expect(tf.backend().refCount(t.dataId)).toBe(1);
    }
    // A second state for the same parameter name gets a free name instead of clashing.
    const s2 = adamw().init({ name: 'names/W', shape: [3, 4], role: 'matrix' });
    expect(s2.m.name).toBe('names/W/m_1');
    tf.dispose([...Object.values(s), ...Object.values(s2)]);
  });

  it('stateBytes(shape) = 8 × numel equals the measured unique state bytes for every golden shape', () => {
    const { golden } = goldenAdamW();
    const plugin = adamw();
    // Still true after an update (the kernel writes in place; the fallback would swap buffers).
    const rows = expectStateBytesMeasured(plugin, golden.shapes);
    for (const shape of Object.values(golden.shapes)) expect(plugin.stateBytes(shape)).toBe(8 * numel(shape));
    console.log(`[optim-adamw] state bytes: ${rows.join('; ')}`);
    expect(adamwStateBytes([768, 3072])).toBe(8 * 768 * 3072);
    expect(adamwStateBytes([])).toBe(8);
  });

  it('leaks nothing: numTensors grows only by the state at init, stays put over updates, returns after dispose', () => {
    expectUpdatesLeakNothing(adamw({ lr: 0.05 }), [8, 8], { steps: 6 });
  });

  it('updates in place on cpu: p, m and v keep their buffers (dataId) through the step', () => {
    const plugin = adamw();
    const p = tf.tidy(() => tf.variable(tf.ones([6, 3]), true, 'inplace/W'));
    const s = plugin.init({ name: 'inplace/W', shape: [6, 3], role: 'matrix' });
    const ids = [p.dataId, s.m.dataId, s.v.dataId];
    const g = tf.fill([6, 3], 0.5);
    plugin.update(p, g, s, 1);
    const after = [p.dataId, s.m.dataId, s.v.dataId];
    for (let i = 0; i < 3; i++) expect(after[i]).toBe(ids[i]);
    expect(p.dataSync()[0]).not.toBe(1);
    tf.dispose([p, g, ...Object.values(s)]);
  });

  it('learningRate (contract field for schedules) is settable, validated, and used by the next update', () => {
    // Step 1 of Adam moves every element by lr·sign(g) (up to eps): here exactly −0.2 from 1.
    expectScheduledLearningRate(
      adamw({ lr: 0.1, weightDecay: 0 }),
      { initial: 0.1, next: 0.2 },
      [0.5, 2, 3],
      (p) => {
        for (const x of p) expect(x).toBeCloseTo(0.8, 6);
      },
    );
  });

  it('does not dispose the gradient', () => {
    const plugin = adamw();
    const p = tf.tidy(() => tf.variable(tf.ones([4]), true, 'keep/b'));
    const s = plugin.init({ name: 'keep/b', shape: [4], role: 'vector' });
    const g = tf.ones([4]);
    plugin.update(p, g, s, 1);
    expect(g.isDisposed).toBe(false);
    tf.dispose([p, g, ...Object.values(s)]);
  });

  it('rejects state it did not create', () => {
    const plugin = adamw();
    const p = tf.tidy(() => tf.variable(tf.ones([2]), true, 'bad-state/b'));
    const g = tf.ones([2]);
    expect(() => plugin.update(p, g, {}, 1)).toThrow(InputError);
    tf.dispose([p, g]);
  });
});

describe('adamw plugin: bad options → InputError', () => {
  const bad: BadOptionsCase[] = [
    ['lr 0', { lr: 0 }, /lr = 0 .*> 0/],
    ['lr negative', { lr: -1e-3 }, /lr = -0\.001/],
    ['lr infinite', { lr: Number.POSITIVE_INFINITY }, /lr = Infinity/],
    ['lr NaN', { lr: Number.NaN }, /lr = NaN/],
    ['lr string', { lr: '1e-3' }, /lr = "1e-3"/],
    ['beta1 = 1', { beta1: 1 }, /beta1 = 1 .*\[0, 1\)/],
    ['beta1 < 0', { beta1: -0.1 }, /beta1 = -0\.1/],
    ['beta2 = 1.5', { beta2: 1.5 }, /beta2 = 1\.5/],
    ['eps 0', { eps: 0 }, /eps = 0 .*> 0/],
    ['weightDecay < 0', { weightDecay: -0.01 }, /weightDecay = -0\.01 .*≥ 0/],
    ['unknown option', { learningRate: 0.1 }, /unknown option 'learningRate'/],
    ['impl', { impl: 'gpu' }, /impl = "gpu"/],
  ];
  itRejectsBadOptions(adamw, bad);

  it('accepts the edge values beta = 0 and weightDecay = 0', () => {
    expect(adamw({ beta1: 0, beta2: 0, weightDecay: 0 }).hparams).toMatchObject({
      beta1: 0,
      beta2: 0,
      weightDecay: 0,
    });
  });

  it('reference names: weight_decay, betas; unknown keys and bad values rejected', () => {
    expect(
      adamwFromReferenceHparams({ lr: 0.02, betas: [0.8, 0.95], eps: 1e-6, weight_decay: 0.1 }).hparams,
    ).toEqual({
      lr: 0.02,
      beta1: 0.8,
      beta2: 0.95,
      eps: 1e-6,
      weightDecay: 0.1,
    });
    expect(adamwFromReferenceHparams({}).hparams.weightDecay).toBe(0.01);
    expect(() => callUntyped(adamwFromReferenceHparams, { amsgrad: true })).toThrow(InputError);
    expect(() => adamwFromReferenceHparams({ weight_decay: -1 })).toThrow(/weightDecay = -1/);
    expect(() => callUntyped(adamwFromReferenceHparams, { betas: [0.9] })).toThrow(InputError);
    expect(() => adamwFromReferenceHparams({ betas: [0.9, 0.99], beta1: 0.9 })).toThrow(InputError);
  });

  it('a non-integer or zero step is rejected', () => {
    const plugin = adamw();
    const p = tf.tidy(() => tf.variable(tf.ones([2]), true, 'step/b'));
    const s = plugin.init({ name: 'step/b', shape: [2], role: 'vector' });
    const g = tf.ones([2]);
    expect(() => plugin.update(p, g, s, 0)).toThrow(InputError);
    expect(() => plugin.update(p, g, s, 1.5)).toThrow(InputError);
    tf.dispose([p, g, ...Object.values(s)]);
  });
});

itRefusesInheritedOptionNames(adamw);
