import { InputError } from '@kstar/core';
import {
  expectLearningRateSetterChecked,
  expectSameFinalBits,
  minimizeLeastSquares,
  onBackend,
  worstErrorOverGradientPlan,
} from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { AdamW, adamwFromReferenceHparams } from '../src/index.ts';
import { adamwStep64, goldenAdamW, goldenAdamWDropIn, type Hp, randn, relErr, rng } from './helpers.ts';
import { replayOptimizer, replayPlugin } from './replay.ts';

const TOL = 1e-5;
onBackend('cpu');

describe('AdamW drop-in: golden replay', () => {
  it('matches torch.optim.AdamW within 1e-5 at every recorded step, bit-identical to the plugin', () => {
    const { run } = goldenAdamW();
    const opt = goldenAdamWDropIn();
    const before = tf.memory().numTensors;
    const r = replayOptimizer(opt, 'golden-dropin');
    console.log(
      `[optim-adamw] golden replay (AdamW class, cpu kernel) worst rel err ${r.worst.toExponential(3)}`,
    );
    expect(Object.keys(r.errors).length).toBe(run.after.length);
    expect(r.worst).toBeLessThanOrEqual(TOL);
    expect(opt.iterations).toBe(10);
    expect(opt.stateNames().sort()).toEqual([
      'golden-dropin/E',
      'golden-dropin/T',
      'golden-dropin/W',
      'golden-dropin/b',
    ]);
    // State: 2 variables per parameter, nothing else.
    expect(tf.memory().numTensors).toBe(before + 8);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const viaPlugin = replayPlugin(adamwFromReferenceHparams(run.hparams), 'golden-dropin-plugin');
    expectSameFinalBits(r, viaPlugin);
  });
});

describe('AdamW drop-in: plain tfjs', () => {
  it('is a tf.Optimizer; minimize drives a least-squares loss down', () => {
    const opt = new AdamW({ lr: 0.05, weightDecay: 0 });
    expect(opt instanceof tf.Optimizer).toBe(true);
    const x = Float32Array.from(randn(rng(7), 32 * 3));
    // State: m, v of w.
    const { l0, last } = minimizeLeastSquares(opt, {
      x,
      wTrue: [[1.5], [-2], [0.5]],
      steps: 150,
      stateTensors: 2,
    });
    expect(last).toBeLessThan(l0 * 1e-3);
  });

  it('keys state by variable name: subsets and reordering between steps match a per-name float64 reference', () => {
    const hp: Hp = { lr: 0.02, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.05 };
    const opt = new AdamW(hp);
    const next = rng(99);
    const worst = worstErrorOverGradientPlan(opt, {
      shapes: { 'order/a': [3], 'order/b': [2, 2] },
      draw: (n) => randn(next, n),
      init: (p0) => ({
        p: Float64Array.from(p0),
        m: new Float64Array(p0.length),
        v: new Float64Array(p0.length),
      }),
      step: (r, g, t) => adamwStep64(r.p, g, r.m, r.v, hp, t),
      err: (values, r) => relErr(values, r.p),
    });
    expect(worst).toBeLessThanOrEqual(TOL);
    expect(opt.iterations).toBe(4);
    opt.dispose();
  });
});

describe('AdamW drop-in: serialization', () => {
  it('bad options → InputError (constructor, fromConfig, learningRate setter)', () => {
    expect(() => new AdamW({ lr: -1 })).toThrow(/adamw: lr = -1 is invalid/);
    expect(() => new AdamW({ beta2: 1 })).toThrow(InputError);
    expect(() => new AdamW({ eps: 0 })).toThrow(InputError);
    expect(() => new AdamW({ weightDecay: Number.NaN })).toThrow(InputError);
    expect(() => AdamW.fromConfig(AdamW, { learningRate: 0 })).toThrow(InputError);
    expectLearningRateSetterChecked(new AdamW());
  });
});
