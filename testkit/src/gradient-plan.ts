import * as tf from '@tensorflow/tfjs';
import { callUntyped } from './option-checks.ts';

/**
 * Applies gradients to a drop-in optimizer the ways tfjs callers pass them, one call per entry of `plan` (the
 * variable names given a gradient at that step): the first step as a name → tensor map, the middle ones as arrays
 * (subsets, any order), the last as an array led by a null gradient for `nullName` (tfjs skips it). Each gradient
 * is `draw(numel)`, drawn in plan order; after each step `check(names, grads, t)` (t = 1, 2, …) steps a reference
 * and compares. The gradient tensors are disposed.
 */
export function applyGradientsPlan(
  opt: tf.Optimizer,
  shapes: Record<string, number[]>,
  plan: readonly string[][],
  draw: (n: number) => Float32Array,
  check: (names: readonly string[], grads: Record<string, Float32Array>, t: number) => void,
  nullName = 'order/b',
): void {
  plan.forEach((names, i) => {
    const g: Record<string, Float32Array> = {};
    for (const n of names) g[n] = draw(tf.util.sizeFromShape(shapes[n]!));
    const tensors = names.map((n) => ({ name: n, tensor: tf.tensor(g[n]!, shapes[n]!) }));
    if (i === 0) opt.applyGradients(Object.fromEntries(tensors.map((e) => [e.name, e.tensor])));
    else if (i === plan.length - 1) {
      // A null gradient, as tfjs's own optimizers accept; the types say every entry has a tensor.
      callUntyped(opt.applyGradients.bind(opt), [{ name: nullName, tensor: null }, ...tensors]);
    } else opt.applyGradients(tensors);
    tf.dispose(tensors.map((e) => e.tensor));
    check(names, g, i + 1);
  });
}

/**
 * The plan of the drop-in optimizers' "state keyed by variable name" test: step 1 both (map), 2 `order/b` only
 * (array), 3 reversed order (array), 4 `order/a` with `order/b`'s gradient null.
 */
export const GRADIENT_ORDER_PLAN: readonly string[][] = [
  ['order/a', 'order/b'],
  ['order/b'],
  ['order/b', 'order/a'],
  ['order/a'],
];

/**
 * One trainable `tf.Variable` per `name → shape`, named `name` and started at `draw(numel)` rounded to float32 (drawn
 * in `shapes` order), beside its float64 reference `init(p0, shape)`. The caller disposes the variables.
 */
export function variablesWithReference<R>(
  shapes: Record<string, number[]>,
  draw: (n: number) => ArrayLike<number>,
  init: (p0: Float32Array, shape: number[]) => R,
): { vars: Record<string, tf.Variable>; ref: Record<string, R> } {
  const vars: Record<string, tf.Variable> = {};
  const ref: Record<string, R> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const p0 = Float32Array.from(draw(tf.util.sizeFromShape(shape)));
    vars[name] = tf.tidy(() => tf.variable(tf.tensor(p0.slice(), shape), true, name));
    ref[name] = init(p0, shape);
  }
  return { vars, ref };
}
