import { InputError } from '@kstar/core';
import {
  constructUntyped,
  expectLearningRateSetterChecked,
  expectSameFinalBits,
  minimizeLeastSquares,
  onBackend,
  worstErrorOverGradientPlan,
} from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { CAME, cameFromReferenceHparams } from '../src/index.ts';
import { came64Init, came64Step, goldenCameRuns, type Hp64, randn, relErr, rng } from './helpers.ts';
import { PARITY_HP } from './parity.ts';
import { replayOptimizer, replayPlugin } from './replay.ts';

const TOL = 1e-5;
onBackend('cpu');

describe('CAME drop-in: golden replay', () => {
  it('matches came_pytorch.CAME within 1e-5 at every recorded step, bit-identical to the plugin', async () => {
    for (const run of goldenCameRuns().runs) {
      const opt = new CAME(cameFromReferenceHparams(run.hparams).hparams);
      const before = tf.memory().numTensors;
      const r = await replayOptimizer(opt, run, 'golden-dropin');
      console.log(
        `[optim-came] golden replay (CAME class, cpu kernel) worst rel err ${r.worst.toExponential(3)} at ${r.worstAt}`,
      );
      expect(Object.keys(r.errors).length).toBe(run.after.length);
      expect(r.worst).toBeLessThanOrEqual(TOL);
      expect(opt.iterations).toBe(10);
      expect(opt.stateNames().sort()).toEqual(run.params_used.map((n) => `golden-dropin/${n}`).sort());
      // State: 5 variables per factored parameter (W, T, E), 2 for the vector b.
      expect(tf.memory().numTensors).toBe(before + 5 * 3 + 2);
      opt.dispose();
      expect(tf.memory().numTensors).toBe(before);
      const viaPlugin = await replayPlugin(
        cameFromReferenceHparams(run.hparams),
        run,
        'golden-dropin-plugin',
      );
      expectSameFinalBits(r, viaPlugin);
    }
  });
});

describe('CAME drop-in: plain tfjs', () => {
  it('is a tf.Optimizer; minimize drives a least-squares loss down', () => {
    const opt = new CAME({ lr: 0.01 });
    expect(opt instanceof tf.Optimizer).toBe(true);
    const x = Float32Array.from(randn(rng(7), 32 * 3));
    const wTrue = [
      [1.5, 0.3],
      [-2, 1],
      [0.5, -0.7],
    ];
    // State: m, vRow, vCol, resRow, resCol of w.
    const { l0, last } = minimizeLeastSquares(opt, { x, wTrue, steps: 150, stateTensors: 5 });
    console.log(
      `[optim-came] minimize least squares: loss ${l0.toFixed(4)} → ${last.toExponential(3)} (150 steps)`,
    );
    expect(last).toBeLessThan(l0 * 1e-2);
  });

  it('keys state by variable name: subsets and reordering between steps match a per-name float64 reference', () => {
    const hp: Hp64 = { ...PARITY_HP, lr: 0.02, weightDecay: 0.05 };
    const opt = new CAME(hp);
    const next = rng(99);
    const worst = worstErrorOverGradientPlan(opt, {
      shapes: { 'order/a': [3], 'order/b': [2, 3] },
      draw: (n) => randn(next, n),
      init: (p0, s) => ({ p: Float64Array.from(p0), s: came64Init(s) }),
      step: (r, g) => came64Step(r.p, g, r.s, hp),
      err: (values, r) => relErr(values, r.p),
    });
    expect(worst).toBeLessThanOrEqual(TOL);
    expect(opt.iterations).toBe(4);
    opt.dispose();
  });
});

describe('CAME drop-in: serialization', () => {
  it('bad options → InputError (constructor, fromConfig, learningRate setter)', () => {
    expect(() => new CAME({ lr: -1 })).toThrow(/came: lr = -1 is invalid/);
    expect(() => constructUntyped(CAME, {})).toThrow(/lr is required/);
    expect(() => constructUntyped(CAME, undefined)).toThrow(InputError);
    expect(() => new CAME({ lr: 1, beta3: 1 })).toThrow(InputError);
    expect(() => new CAME({ lr: 1, eps2: 0 })).toThrow(InputError);
    expect(() => new CAME({ lr: 1, weightDecay: Number.NaN })).toThrow(InputError);
    expect(() => CAME.fromConfig(CAME, { learningRate: 0 })).toThrow(InputError);
    expectLearningRateSetterChecked(new CAME({ lr: 1 }));
  });
});
