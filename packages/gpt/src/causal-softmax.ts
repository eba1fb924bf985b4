import * as tf from '@tensorflow/tfjs-core';
import { customOp, step } from './custom-grad.ts';

/** Additive causal masks as plain JS data (not tensors), by T: 0 on and below the diagonal, −1e9 above. */
const masks = new Map<number, Float32Array>();

function causalMaskData(T: number): Float32Array {
  let m = masks.get(T);
  if (!m) {
    m = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e9;
    masks.set(T, m);
  }
  return m;
}

/**
 * `p = softmax(scale·s + mask)` over the last axis of raw attention scores `s` [B, H, T, T], with the additive causal
 * mask (−1e9 above the diagonal) built inside the op from cached JS data, so no tensor outlives a call.
 * Custom gradient: the tape keeps only `p`; `ds = scale·p·(dp − Σ_j dp·p)` (masked entries have p = 0).
 * Temporaries are disposed as soon as used: ≤ 2 buffers of s's size besides `p`, forward and backward.
 */
const causalSoftmaxOp = (scale: number) =>
  customOp(([s], save) => {
    const T = s!.shape[s!.rank - 1]!;
    const mask = tf.tensor2d(causalMaskData(T), [T, T]); // [T, T]
    const p = step(
      step(tf.mul(s!, scale), (t) => tf.add(t, mask)),
      (t) => tf.softmax(t),
    ); // [B, H, T, T]
    mask.dispose();
    save([p]);
    return {
      value: p,
      gradFunc: (dy, [ps]) => {
        const dyp = tf.mul(dy, ps!); // [B, H, T, T]
        const rowSum = tf.sum(dyp, -1, true); // [B, H, T, 1]
        const ds = step(
          step(tf.mul(ps!, rowSum), (t) => {
            const out = tf.sub(dyp, t);
            dyp.dispose();
            return out;
          }),
          (t) => tf.mul(t, scale),
        ); // [B, H, T, T]
        rowSum.dispose();
        return [ds];
      },
    };
  });

const ops = new Map<number, (s: tf.Tensor) => tf.Tensor>();

/** Causal softmax of scores `s` [B, H, T, T] scaled by `scale` (1/√head_dim). */
export function causalSoftmax(s: tf.Tensor, scale: number): tf.Tensor {
  let op = ops.get(scale);
  if (!op) {
    op = causalSoftmaxOp(scale);
    ops.set(scale, op);
  }
  return op(s);
}
