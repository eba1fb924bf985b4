import { InputError } from '@kstar/core';
import {
  callUntyped,
  expectLearningRateSetterChecked,
  expectSameFinalBits,
  onBackend,
  worstErrorOverGradientPlan,
} from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Adafactor, adafactorFromReferenceHparams } from '../src/index.ts';
import { Adafactor64, goldenAdafactorRuns, HF_DEFAULTS, type RefHp, randn, relErr, rng } from './helpers.ts';
import { replayOptimizer, replayPlugin, TOL } from './replay.ts';

onBackend('cpu');

describe('Adafactor drop-in: golden replay', () => {
  it('both runs match transformers Adafactor within 1e-5 at every recorded step, bit-identical to the plugin', async () => {
    const { runs } = goldenAdafactorRuns();
    for (const { run, index } of runs) {
      const plugin = callUntyped(adafactorFromReferenceHparams, run.hparams);
      const opt = new Adafactor(plugin.hparams);
      const before = tf.memory().numTensors;
      const r = await replayOptimizer(opt, index, `golden-dropin-${index}`);
      console.log(
        `[optim-adafactor] golden run ${index} (Adafactor class, cpu) worst ${r.worst.toExponential(2)} at ${r.worstAt}`,
      );
      expect(Object.keys(r.errors).length).toBe(run.after.length);
      expect(r.worst).toBeLessThanOrEqual(TOL);
      expect(opt.iterations).toBe(10);
      expect(opt.stepsOf(`golden-dropin-${index}/T`)).toBe(10);
      // State: W, T, E factored (2 each), b a vector (1), + exp_avg per parameter with beta1.
      expect(tf.memory().numTensors).toBe(before + 7 + (run.hparams.beta1 != null ? 4 : 0));
      opt.dispose();
      expect(tf.memory().numTensors).toBe(before);
      const viaPlugin = await replayPlugin(plugin, index, `golden-dropin-plugin-${index}`);
      expectSameFinalBits(r, viaPlugin);
    }
  });
});

describe('Adafactor drop-in: plain tfjs', () => {
  it('is a tf.Optimizer; minimize drives a least-squares loss down (HF test_adafactor setting)', () => {
    // transformers tests/optimization: w = [0.1, −0.2, −0.1] fits [0.4, 0.2, −0.5], lr 1e-2, all switches off.
    const opt = new Adafactor({ lr: 1e-2, relativeStep: false, scaleParameter: false, warmupInit: false });
    expect(opt instanceof tf.Optimizer).toBe(true);
    const w = tf.tidy(() => tf.variable(tf.tensor([0.1, -0.2, -0.1]), true, 'hf/w'));
    const target = tf.tensor([0.4, 0.2, -0.5]);
    const loss = () => tf.losses.meanSquaredError(target, w) as tf.Scalar;
    const count0 = tf.memory().numTensors;
    for (let i = 0; i < 1000; i++) opt.minimize(loss, false, [w]);
    expect(tf.memory().numTensors).toBe(count0 + 1); // exp_avg_sq of w
    const got = w.dataSync();
    for (const [i, x] of [0.4, 0.2, -0.5].entries()) expect(Math.abs(got[i]! - x)).toBeLessThan(1e-2);
    opt.dispose();
    tf.dispose([w, target]);
  });

  it('keys state by variable name with per-variable steps (HF state["step"]): subsets and reordering match float64', () => {
    const options = { lr: 0.02, relativeStep: false, beta1: 0.9, weightDecay: 0.05 };
    const hp: RefHp = { ...HF_DEFAULTS, lr: 0.02, relative_step: false, beta1: 0.9, weight_decay: 0.05 };
    const opt = new Adafactor(options);
    const next = rng(99);
    const worst = worstErrorOverGradientPlan(opt, {
      shapes: { 'order/a': [3], 'order/b': [2, 4], 'order/c': [2, 2, 3] },
      // Step 1: a, b (map); 2: b only (array); 3: c first seen, reversed order; 4: a, with b's gradient null.
      plan: [['order/a', 'order/b'], ['order/b'], ['order/c', 'order/b', 'order/a'], ['order/a']],
      draw: (n) => randn(next, n),
      init: (p0, s) => ({ p: Float64Array.from(p0), r: new Adafactor64(s, hp) }),
      step: (r, g) => r.r.update(r.p, g),
      err: (values, r) => relErr(values, r.p),
    });
    expect(worst).toBeLessThanOrEqual(TOL);
    expect(opt.iterations).toBe(4);
    expect(['order/a', 'order/b', 'order/c'].map((n) => opt.stepsOf(n))).toEqual([3, 3, 1]);
    opt.dispose();
  });
});

describe('Adafactor drop-in: serialization and options', () => {
  it('bad options → InputError; learningRate is settable without relativeStep, an InputError with it', () => {
    expect(() => new Adafactor({ lr: 1e-3 })).toThrow(/cannot be combined with relativeStep/);
    expect(() => new Adafactor({ relativeStep: false, lr: 1e-3, warmupInit: true })).toThrow(InputError);
    expect(() => new Adafactor({ beta1: 1 })).toThrow(InputError);
    expect(() => Adafactor.fromConfig(Adafactor, { learningRate: 0, relativeStep: false })).toThrow(
      InputError,
    );
    const rel = new Adafactor();
    expect(rel.learningRate).toBeNull();
    expect(() => {
      rel.learningRate = 0.1;
    }).toThrow(/learningRate cannot be set/);
    expectLearningRateSetterChecked(new Adafactor({ relativeStep: false, lr: 0.1 }));
  });
});
