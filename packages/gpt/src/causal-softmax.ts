import { causalSoftmaxGradKernel, causalSoftmaxKernel, customOp } from '@kstar/kernels';
import type * as tf from '@tensorflow/tfjs-core';

/**
 * `p = softmax(scale·s + mask)` over the last axis of raw attention scores `s` [B, H, T, T], with the causal mask
 * (−1e9 above the diagonal), so no mask tensor outlives a call.
 * Custom gradient: the tape keeps only `p`; `ds = scale·p·(dp − Σ_j dp·p)` (masked entries have p = 0).
 * Both directions are @kstar/kernels' `KstarCausalSoftmax`/`KstarCausalSoftmaxGrad`: one fused WGSL dispatch each on
 * WebGPU; elsewhere the tfjs-ops fallback, ≤ 2 buffers of s's size besides `p`, forward and backward.
 */
const causalSoftmaxOp = (scale: number) =>
  customOp(([s], save) => {
    const p = causalSoftmaxKernel.run({ s: s!, scale }); // [B, H, T, T]
    save([p]);
    return {
      value: p,
      gradFunc: (dy, [ps]) => [causalSoftmaxGradKernel.run({ p: ps!, dp: dy, scale })],
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
