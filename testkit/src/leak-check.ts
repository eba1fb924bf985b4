import type { OptimizerPlugin } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';

/**
 * The leak check every optimizer plugin's tests run, on one parameter of `shape`: after `init` the tensor count
 * grew by the parameter and one tensor a state key; it stays put over `steps` updates (the gradient is the
 * caller's: never disposed by the update), which keep the parameter's and the state's buffers (in place); one
 * more update with a clone of the parameter alive (a shared buffer forces the fallback: `whileCloned` may check
 * that) leaves the clone's values alone and adds no tensor; disposing the parameter and state returns to the start.
 */
export function expectUpdatesLeakNothing<P extends OptimizerPlugin>(
  plugin: P,
  shape: number[],
  options: {
    steps?: number;
    whileCloned?: (p: tf.Variable, g: tf.Tensor, s: ReturnType<P['init']>) => void;
  } = {},
): void {
  const { steps = 4, whileCloned } = options;
  const name = `leak/${plugin.name}/${shape.length}`;
  const begin = tf.memory().numTensors;
  const p = tf.tidy(() => tf.variable(tf.randomNormal(shape), true, name));
  const s = plugin.init({ name, shape, role: 'other' }) as ReturnType<P['init']>;
  const afterInit = tf.memory().numTensors;
  expect(afterInit).toBe(begin + 1 + Object.keys(s).length);
  const buffers = () => [p.dataId, ...Object.values(s).map((t) => t.dataId)];
  const ids = buffers();
  for (let t = 1; t <= steps; t++) {
    const g = tf.randomNormal(shape);
    plugin.update(p, g, s, t);
    expect(g.isDisposed).toBe(false);
    g.dispose();
    expect(tf.memory().numTensors).toBe(afterInit);
  }
  expect(buffers()).toEqual(ids);
  const clone = tf.clone(p);
  const before = Float32Array.from(clone.dataSync());
  const g = tf.randomNormal(shape);
  whileCloned?.(p, g, s);
  plugin.update(p, g, s, steps + 1);
  expect(Array.from(clone.dataSync())).toEqual(Array.from(before));
  tf.dispose([g, clone]);
  expect(tf.memory().numTensors).toBe(afterInit);
  tf.dispose([p, ...Object.values(s)]);
  expect(tf.memory().numTensors).toBe(begin);
}
