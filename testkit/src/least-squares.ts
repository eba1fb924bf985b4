import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';

/**
 * A drop-in optimizer as plain tfjs code uses it: `opt.minimize` on the least-squares fit of `w` (zeros, the shape
 * of `wTrue`) to y = x·wTrue, x = `x` as [32, 3], for `steps` steps; `afterStep(i)` may change the optimizer
 * (an lr schedule). After the first step exactly `stateTensors` tensors are new (the optimizer's state of w) and
 * no more come later. Returns the loss before the first step and after the last; the optimizer and every tensor are
 * disposed.
 */
export function minimizeLeastSquares(
  opt: tf.Optimizer,
  options: {
    x: Float32Array;
    wTrue: number[][];
    steps: number;
    stateTensors: number;
    afterStep?: (i: number) => void;
  },
): { l0: number; last: number } {
  const { steps, stateTensors, afterStep } = options;
  const x = tf.tensor(options.x, [32, 3]);
  const wTrue = tf.tensor(options.wTrue);
  const y = tf.matMul(x, wTrue);
  const w = tf.tidy(() => tf.variable(tf.zerosLike(wTrue), true, 'plain/w'));
  const loss = () => tf.losses.meanSquaredError(y, tf.matMul(x, w)) as tf.Scalar;
  const l0 = tf.tidy(() => loss().dataSync()[0]!);
  const afterFirst = tf.memory().numTensors;
  let last = l0;
  for (let i = 0; i < steps; i++) {
    const c = opt.minimize(loss, true, [w])!;
    last = c.dataSync()[0]!;
    c.dispose();
    if (i === 0) expect(tf.memory().numTensors).toBe(afterFirst + stateTensors);
    afterStep?.(i);
  }
  expect(tf.memory().numTensors).toBe(afterFirst + stateTensors);
  opt.dispose();
  tf.dispose([x, wTrue, y, w]);
  return { l0, last };
}
