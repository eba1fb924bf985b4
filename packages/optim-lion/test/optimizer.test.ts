import { InputError } from '@kstar/core';
import {
  callUntyped,
  constructUntyped,
  expectLearningRateSetterChecked,
  expectSameFinalBits,
  minimizeLeastSquares,
  onBackend,
  worstErrorOverGradientPlan,
} from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Lion, lionFromReferenceHparams } from '../src/index.ts';
import { goldenLionRuns, type LionHp, lionStep64, randn, rng, signAwareErr, takenSigns } from './helpers.ts';
import { expectGolden, replayLion, summary } from './replay.ts';

const TOL = 1e-5;
onBackend('cpu');

const fromRun = (h: Record<string, number>) =>
  new Lion({ lr: h.lr, beta1: h.beta1, beta2: h.beta2, weightDecay: h.weight_decay });

describe('the sign-aware comparison counts differing elements (it does not hide them)', () => {
  it('an element moved the other way is counted once, with an error of 2·lr; the rest stay within tolerance', () => {
    const lr = 1e-3;
    const ref = [0.5, -0.25, 1, 0.125];
    const p = Float32Array.from([0.5, -0.25 + 2 * lr, 1 + 1e-8, 0.125]);
    const e = signAwareErr(p, ref, lr);
    expect(e.differing).toBe(1);
    expect(e.differingInLr[0]).toBeCloseTo(2, 3);
    expect(e.relErr).toBeLessThan(1e-7);
    const hp: LionHp = { lr, beta1: 0.9, beta2: 0.99, weightDecay: 0.1 };
    const decay = 1 - lr * 0.1;
    const after = Float32Array.from([0.5 * decay - lr, -0.25 * decay + lr, 1 * decay, 0.125 * decay - lr]);
    expect(Array.from(takenSigns([0.5, -0.25, 1, 0.125], after, hp))).toEqual([1, -1, 0, 1]);
  });
});

describe('Lion drop-in: golden replay', () => {
  it('every golden Lion run through applyGradients: same bar as the plugin, bit-identical to it', async () => {
    const { runs } = goldenLionRuns();
    for (const { run, index } of runs) {
      const opt = fromRun(run.hparams);
      const before = tf.memory().numTensors;
      const r = await replayLion({ kind: 'optimizer', optimizer: opt }, `golden-dropin-${index}`, index);
      console.log(summary('Lion class, cpu kernel', r));
      expectGolden(r, TOL, expect);
      expect(opt.iterations).toBe(10);
      expect(opt.stateNames().sort()).toEqual(['E', 'T', 'W', 'b'].map((n) => `golden-dropin-${index}/${n}`));
      expect(tf.memory().numTensors).toBe(before + 4); // one momentum per parameter, nothing else
      opt.dispose();
      expect(tf.memory().numTensors).toBe(before);
      const viaPlugin = await replayLion(
        { kind: 'plugin', plugin: callUntyped(lionFromReferenceHparams, run.hparams) },
        `golden-dropin-plugin-${index}`,
        index,
      );
      expectSameFinalBits(r, viaPlugin);
    }
  });
});

describe('Lion drop-in: plain tfjs', () => {
  it('is a tf.Optimizer; minimize drives a least-squares loss down', () => {
    const opt = new Lion({ lr: 0.05 });
    expect(opt instanceof tf.Optimizer).toBe(true);
    // State: m of w. Sign updates hover ±lr around the optimum: anneal.
    const { l0, last } = minimizeLeastSquares(opt, {
      x: randn(rng(7), 32 * 3),
      wTrue: [[1.5], [-2], [0.5]],
      steps: 300,
      stateTensors: 1,
      afterStep: (i) => {
        if (i === 150) opt.learningRate = 0.005;
        if (i === 250) opt.learningRate = 0.0005;
      },
    });
    expect(last).toBeLessThan(l0 * 1e-3);
  });

  it('keys state by variable name: subsets and reordering between steps match a per-name float64 reference', () => {
    const hp: LionHp = { lr: 0.02, beta1: 0.9, beta2: 0.99, weightDecay: 0.5 };
    const opt = new Lion(hp);
    const next = rng(99);
    let differing = 0;
    const worst = worstErrorOverGradientPlan(opt, {
      shapes: { 'order/a': [3], 'order/b': [2, 2] },
      draw: (n) => randn(next, n),
      init: (p0) => ({ p: Float64Array.from(p0), m: new Float64Array(p0.length) }),
      step: (r, g) => lionStep64(r.p, g, r.m, hp),
      err: (values, r) => {
        const e = signAwareErr(values, r.p, hp.lr);
        differing += e.differing;
        return e.relErr;
      },
    });
    expect(differing).toBe(0);
    expect(worst).toBeLessThanOrEqual(TOL);
    expect(opt.iterations).toBe(4);
    opt.dispose();
  });

  it('bad options → InputError (constructor, learningRate setter)', () => {
    expect(() => new Lion({ lr: -1 })).toThrow(/lion: lr = -1 is invalid/);
    expect(() => new Lion({ beta2: 1.5 })).toThrow(InputError);
    expect(() => new Lion({ weightDecay: Number.NaN })).toThrow(InputError);
    expect(() => constructUntyped(Lion, { impl: 'gpu' })).toThrow(InputError);
    expect(() => Lion.fromConfig(Lion, { learningRate: 0 })).toThrow(InputError);
    expectLearningRateSetterChecked(new Lion());
  });
});
