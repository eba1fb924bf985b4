import { engineInternals } from '@kstar/core';
import { addInPlace, type CustomOpBody, customOp } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';

/**
 * The ops here use `@kstar/kernels`' `customOp` with `tidyGradient: false`: their gradient functions call `tf.grads`
 * on a chunk (a fresh, nested tape) and dispose their own temporaries chunk by chunk, to bound the peak.
 */
export function chunkedOp(body: CustomOpBody): (...inputs: tf.Tensor[]) => tf.Tensor {
  return customOp(body, { tidyGradient: false });
}

/**
 * Add `parts` into the running sums `acc` and dispose the parts; the first call adopts the parts. In place
 * (@kstar/kernels' addInPlace) where the backend has the kernel and the sum's buffer is not shared, so a sum costs
 * 2× its size at the add (old sum + part), not 3× (old sum + part + new sum).
 */
export function accumulate(acc: tf.Tensor[] | undefined, parts: tf.Tensor[]): tf.Tensor[] {
  if (!acc) return parts;
  const next = acc.map((a, i) => {
    const sum = addInPlace(a, parts[i]!);
    if (sum !== a) a.dispose();
    return sum;
  });
  tf.dispose(parts);
  return next;
}

/** Concatenate along `axis` and dispose the pieces (a single piece is returned as is). */
export function concatOwned(pieces: tf.Tensor[], axis: number): tf.Tensor {
  if (pieces.length === 1) return pieces[0]!;
  const out = tf.concat(pieces, axis);
  tf.dispose(pieces);
  return out;
}

/**
 * `tf.grads(f)(xs, dy)` called from inside a custom gradient function. tfjs keeps one tape: a gradient call made
 * while no tape is recording starts a fresh one and, when done, disposes that tape's saved tensors and sets it to
 * null (tfjs-core 4.22 engine.ts `gradients`), and the outer backward pass, still running, later does the same to
 * what it believes is its own tape, which would now be null. So the outer tape is put back after each inner call.
 * The inner tape's saved tensors are freed at the inner call's end: one chunk's graph at a time.
 */
export function nestedGrads(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  xs: tf.Tensor[],
  dy: tf.Tensor,
): tf.Tensor[] {
  const engine = engineInternals();
  const outer = engine.state.activeTape;
  try {
    return tf.grads(f)(xs, dy);
  } finally {
    engine.state.activeTape = outer;
  }
}

/** `f(t)`, then dispose `t`: chains element-wise steps so at most two of a chain's buffers are alive at once. */
export function step(t: tf.Tensor, f: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  const r = f(t);
  t.dispose();
  return r;
}
