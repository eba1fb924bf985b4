import { customOp, geluGradKernel, geluKernel } from '@kstar/kernels';
import type * as tf from '@tensorflow/tfjs-core';

/**
 * GELU, tanh approximation (GPT-2): `0.5·h·(1 + tanh(c·(h + a·h³)))`, c = √(2/π), a = 0.044715.
 * Custom gradient: the tape keeps only the input `h` (already kept by the matMul that made it), and backward
 * recomputes `t = tanh(u)`: `dh = dy·(0.5·(1 + t) + 0.5·c·h·(1 − t²)·(1 + 3a·h²))`.
 * Forward and backward are @kstar/kernels' `KstarGelu`/`KstarGeluGrad`: one fused WGSL dispatch each on WebGPU;
 * elsewhere the tfjs-ops fallback, whose temporaries are disposed as soon as used (forward ≤ 2, backward ≤ 4
 * buffers of h's size).
 */
const geluOp = customOp(([h], save) => {
  save([h!]);
  return {
    value: geluKernel.run(h!),
    gradFunc: (dy, [hs]) => [geluGradKernel.run({ h: hs!, dy })],
  };
});

/** GELU (tanh approximation) of any tensor. */
export function gelu(h: tf.Tensor): tf.Tensor {
  return geluOp(h);
}
