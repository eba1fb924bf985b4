import * as tf from '@tensorflow/tfjs-core';
import { customOp, step } from './custom-grad.ts';

/** LayerNorm epsilon (GPT-2). */
export const LN_EPS = 1e-5;

/**
 * LayerNorm over the last axis: `y = (x − μ)·rstd·γ + β`, `rstd = 1/√(σ² + ε)`.
 * Custom gradient, so the tape keeps only `x` (a buffer the caller holds anyway), γ, and μ, rstd ([N,1] each)
 * instead of every elementwise intermediate. Backward recomputes x̂ and applies
 * `dx = rstd·(g − mean(g) − x̂·mean(g·x̂))` with `g = dy·γ`; `dγ = Σ dy·x̂`, `dβ = Σ dy`.
 * Temporaries are disposed as soon as used: forward holds ≤ 2, backward ≤ 4 buffers of x's size.
 */
const layerNormOp = customOp(([x, gamma, beta], save) => {
  // x [N, D], gamma [D], beta [D]
  const mean = tf.mean(x!, -1, true); // [N, 1]
  const xc = tf.sub(x!, mean); // [N, D]
  const rstd = step(
    step(
      step(tf.square(xc), (t) => tf.mean(t, -1, true)),
      (t) => tf.add(t, LN_EPS),
    ),
    (t) => tf.rsqrt(t),
  ); // [N, 1]
  const value = step(
    step(
      step(xc, (t) => tf.mul(t, rstd)),
      (t) => tf.mul(t, gamma!),
    ),
    (t) => tf.add(t, beta!),
  ); // [N, D]
  save([x!, gamma!, mean, rstd]);
  return {
    value,
    gradFunc: (dy, [xs, g, mu, r]) => {
      const xhat = step(tf.sub(xs!, mu!), (t) => tf.mul(t, r!)); // [N, D]
      const dgamma = step(tf.mul(dy, xhat), (t) => tf.sum(t, 0)); // [D]
      const dbeta = tf.sum(dy, 0); // [D]
      const gy = tf.mul(dy, g!); // [N, D]
      const meanG = tf.mean(gy, -1, true); // [N, 1]
      const meanGX = step(tf.mul(gy, xhat), (t) => tf.mean(t, -1, true)); // [N, 1]
      const xm = step(xhat, (t) => tf.mul(t, meanGX)); // [N, D]
      const dx = step(
        step(
          step(gy, (t) => tf.sub(t, meanG)),
          (t) => tf.sub(t, xm),
        ),
        (t) => tf.mul(t, r!),
      ); // [N, D]
      xm.dispose();
      return [dx, dgamma, dbeta];
    },
  };
});

/** LayerNorm of a 2-D `x` [N, D] with `gamma`, `beta` [D]. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  return layerNormOp(x, gamma, beta);
}
