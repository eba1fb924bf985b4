import type { OptimizerPlugin, OptimizerState, ParamInfo } from '@kstar/core';
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

/**
 * The in-place check of a backend's native kernel: a parameter of ones (`name`, `shape`, `role`) takes `steps`
 * updates with gradient `fill(shape, 0.25·t)` (`beforeUpdate` may check each, e.g. which kernel runs), keeping the
 * parameter's and the state's buffers (dataId) and the tensor count. Returns both for the caller to read and dispose.
 */
export function expectFillStepsInPlace<S extends OptimizerState>(
  plugin: Omit<OptimizerPlugin, 'init'> & { init(param: ParamInfo): S },
  param: ParamInfo & { shape: number[] },
  options: { steps?: number; beforeUpdate?: (p: tf.Variable, g: tf.Tensor, s: S) => void } = {},
): { p: tf.Variable; s: S } {
  const { steps = 3, beforeUpdate } = options;
  const p = tf.tidy(() => tf.variable(tf.ones(param.shape), true, param.name));
  const s = plugin.init(param);
  const buffers = () => [p.dataId, ...Object.values(s).map((t) => t.dataId)];
  const ids = buffers();
  const count = tf.memory().numTensors;
  for (let t = 1; t <= steps; t++) {
    const g = tf.fill(param.shape, 0.25 * t);
    beforeUpdate?.(p, g, s);
    plugin.update(p, g, s, t);
    g.dispose();
  }
  expect(buffers()).toEqual(ids);
  expect(tf.memory().numTensors).toBe(count);
  return { p, s };
}
