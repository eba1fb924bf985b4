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
 * The default plan of `worstErrorOverGradientPlan`: step 1 both (map), 2 `order/b` only (array), 3 reversed order
 * (array), 4 `order/a` with `order/b`'s gradient null.
 */
export const GRADIENT_ORDER_PLAN: readonly string[][] = [
  ['order/a', 'order/b'],
  ['order/b'],
  ['order/b', 'order/a'],
  ['order/a'],
];

/**
 * The drop-in optimizers' "state keyed by variable name" check. One trainable variable per `name → shape`, named
 * `name`, started at `draw(numel)` rounded to float32 (drawn in `shapes` order), beside its float64 reference
 * `init(p0, shape)`; then `plan` (default `GRADIENT_ORDER_PLAN`) through `applyGradientsPlan` with gradients from
 * `draw`, `step(reference, gradient, t)` stepping the reference of each variable given one. Returns the largest
 * `err(values, reference)` over every variable after every step; disposes the variables (not `opt`).
 */
export function worstErrorOverGradientPlan<R>(
  opt: tf.Optimizer,
  spec: {
    shapes: Record<string, number[]>;
    plan?: readonly string[][];
    draw: (n: number) => ArrayLike<number>;
    init: (p0: Float32Array, shape: number[]) => R;
    step: (reference: R, gradient: Float32Array, t: number) => void;
    err: (values: ArrayLike<number>, reference: R) => number;
  },
): number {
  const { shapes, draw } = spec;
  const vars: Record<string, tf.Variable> = {};
  const ref: Record<string, R> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const p0 = Float32Array.from(draw(tf.util.sizeFromShape(shape)));
    vars[name] = tf.tidy(() => tf.variable(tf.tensor(p0.slice(), shape), true, name));
    ref[name] = spec.init(p0, shape);
  }
  let worst = 0;
  const grad = (n: number) => Float32Array.from(draw(n));
  applyGradientsPlan(opt, shapes, spec.plan ?? GRADIENT_ORDER_PLAN, grad, (names, g, t) => {
    for (const n of names) spec.step(ref[n]!, g[n]!, t);
    for (const n of Object.keys(shapes)) worst = Math.max(worst, spec.err(vars[n]!.dataSync(), ref[n]!));
  });
  tf.dispose(Object.values(vars));
  return worst;
}
