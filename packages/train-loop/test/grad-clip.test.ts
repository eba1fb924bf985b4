import { sgdPlugin } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { scaledOptimizer } from '../src/index.ts';

/** SGD at lr 0.5 that records the gradients it was given. */
function recordingSgd(seen: number[][]) {
  const inner = sgdPlugin(0.5);
  const update = inner.update;
  inner.update = (param, grad, state, step, part) => {
    seen.push(Array.from(grad.dataSync()));
    update.call(inner, param, grad, state, step, part);
  };
  return inner;
}

it('scaledOptimizer: updates see scale · grad (untouched at 1), hyper-parameters and name pass through', () => {
  const seen: number[][] = [];
  const inner = recordingSgd(seen);
  const clipped = scaledOptimizer(inner, 1);
  expect(clipped.name).toBe('sgd');
  expect(clipped.describe()).toEqual({ lr: 0.5, gradClip: 1 });
  const w = tf.variable(tf.tensor1d([1, 2]));
  const g = tf.tensor1d([4, -2]);
  clipped.update(w, g, {}, 1);
  clipped.scale = 0.25;
  clipped.update(w, g, {}, 2);
  expect(seen).toEqual([
    [4, -2],
    [1, -0.5],
  ]);
  // w = [1, 2] − 0.5·[4, −2] − 0.5·[1, −0.5]
  expect(Array.from(w.dataSync())).toEqual([1 - 2 - 0.5, 2 + 1 + 0.25]);
  inner.learningRate = 0.1; // set on the plugin itself, read through the wrapper
  expect(clipped.learningRate).toBe(0.1);
  tf.dispose([w, g]);
});
