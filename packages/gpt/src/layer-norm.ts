import { customOp, layerNormGradKernel, layerNormKernel } from '@kstar/kernels';
import type * as tf from '@tensorflow/tfjs-core';

/** LayerNorm epsilon (GPT-2). */
export const LN_EPS = 1e-5;

/**
 * LayerNorm over the last axis: `y = (x − μ)·rstd·γ + β`, `rstd = 1/√(σ² + ε)`.
 * Custom gradient, so the tape keeps only `x` (a buffer the caller holds anyway), γ, and μ, rstd ([N,1] each)
 * instead of every elementwise intermediate. Backward recomputes x̂ and applies
 * `dx = rstd·(g − mean(g) − x̂·mean(g·x̂))` with `g = dy·γ`; `dγ = Σ dy·x̂`, `dβ = Σ dy`.
 * Both directions are @kstar/kernels' `KstarLayerNorm`/`KstarLayerNormGrad` (fused WGSL on WebGPU; elsewhere the
 * tfjs-ops fallback: forward holds ≤ 2, backward ≤ 4 buffers of x's size).
 */
const layerNormOp = customOp(([x, gamma, beta], save) => {
  // x [N, D], gamma [D], beta [D]
  const { y, mean, rstd } = layerNormKernel.run({ x: x!, gamma: gamma!, beta: beta!, eps: LN_EPS });
  save([x!, gamma!, mean, rstd]);
  return {
    value: y,
    gradFunc: (dy, [xs, g, mu, r]) => {
      const { dx, dgamma, dbeta } = layerNormGradKernel.run({ x: xs!, gamma: g!, mean: mu!, rstd: r!, dy });
      return [dx, dgamma, dbeta];
    },
  };
});

/** LayerNorm of a 2-D `x` [N, D] with `gamma`, `beta` [D]. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  return layerNormOp(x, gamma, beta);
}
