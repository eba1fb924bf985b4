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
