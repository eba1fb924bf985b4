import { InputError, type OptimizerPlugin } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';

/** An optimizer plugin whose learning rate schedules may set (the contract field) and whose hparams show it. */
export type SchedulablePlugin = OptimizerPlugin & {
  learningRate: number;
  readonly hparams: { readonly lr: number };
};

/**
 * The schedule contract: `learningRate` reads `initial`, refuses −1 (InputError), and `next` shows in `hparams`,
 * `describe()` and the next update: one step of a [3] vector of ones with gradient `grad`, whose result `check`
 * judges (the gradient stays the caller's, undisposed).
 */
export function expectScheduledLearningRate(
  plugin: SchedulablePlugin,
  rates: { initial: number; next: number },
  grad: number[],
  check: (p: Float32Array) => void,
): void {
  expect(plugin.learningRate).toBe(rates.initial);
  expect(() => {
    plugin.learningRate = -1;
  }).toThrow(InputError);
  plugin.learningRate = rates.next;
  expect(plugin.hparams.lr).toBe(rates.next);
  expect(plugin.describe().lr).toBe(rates.next);
  const p = tf.tidy(() => tf.variable(tf.ones([3]), true, `sched/${plugin.name}/b`));
  const s = plugin.init({ name: p.name, shape: [3], role: 'vector' });
  const g = tf.tensor(grad);
  plugin.update(p, g, s, 1);
  check(p.dataSync() as Float32Array);
  expect(g.isDisposed).toBe(false);
  tf.dispose([p, g, ...Object.values(s)]);
}

/**
 * A drop-in optimizer's `learningRate` setter (what schedules call): refuses 0 (InputError), and a valid rate, 0.5,
 * shows in `hparams.lr`.
 */
export function expectLearningRateSetterChecked(opt: {
  learningRate: number | null;
  readonly hparams: object;
}): void {
  expect(() => {
    opt.learningRate = 0;
  }).toThrow(InputError);
  opt.learningRate = 0.5;
  expect(opt.hparams).toMatchObject({ lr: 0.5 });
}
