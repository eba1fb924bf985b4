import { factoredMomentOps, factoredRsqrtOps } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';
import type { CameConsts } from './loops.ts';
import type { CameFactoredState, CameVectorState } from './state.ts';

/**
 * The CAME update with tfjs ops + `assign` (every backend, including tensorflow; also the parity reference of
 * the native kernels). Written from came_pytorch's equations, independently of the loops.
 *
 * Memory: each state is computed in its own inner tidy; the clipped update U [param-sized] is kept across the
 * momentum and instability steps, and each inner tidy holds up to 3 more param-sized temporaries, so the peak
 * is about 4 parameter-sized temporaries plus the new buffers `assign` swaps in.
 */
export function cameFactoredFallback(
  param: tf.Variable,
  grad: tf.Tensor,
  s: CameFactoredState,
  c: CameConsts,
): void {
  const { batch: B, rows: M, cols: N } = c;
  tf.tidy(() => {
    const g = tf.reshape(grad, [B, M, N]);
    // u = g² + ε1; row and column means into the β2-EMAs (shapes [..., m] and [..., n] as the state has).
    tf.tidy(() => factoredMomentOps(s.vRow, s.vCol, tf.add(tf.square(g), c.eps1), c.beta2));
    /** rsqrt(row / mean(row)) [..., m, 1] · rsqrt(col) [..., 1, n] → [B, m, n]. */
    const approx = (row: tf.Tensor, col: tf.Tensor) =>
      tf.tidy(() => tf.reshape(factoredRsqrtOps(row, col), [B, M, N]));
    const U = tf.tidy(() => {
      const raw = tf.mul(approx(s.vRow, s.vCol), g);
      const rms = tf.sqrt(tf.mean(tf.square(raw)));
      return tf.div(raw, tf.maximum(tf.div(rms, c.clipThreshold), 1));
    });
    s.m.assign(
      tf.tidy(() => tf.add(tf.mul(s.m, c.beta1), tf.mul(tf.reshape(U, s.m.shape), c.oneMinusBeta1))),
    );
    tf.tidy(() => {
      const res = tf.add(tf.square(tf.sub(U, tf.reshape(s.m, [B, M, N]))), c.eps2);
      s.resRow.assign(
        tf.add(
          tf.mul(s.resRow, c.beta3),
          tf.mul(tf.reshape(tf.mean(res, -1), s.resRow.shape), c.oneMinusBeta3),
        ),
      );
      s.resCol.assign(
        tf.add(
          tf.mul(s.resCol, c.beta3),
          tf.mul(tf.reshape(tf.mean(res, -2), s.resCol.shape), c.oneMinusBeta3),
        ),
      );
    });
    U.dispose();
    param.assign(
      tf.tidy(() => {
        const step = tf.reshape(tf.mul(approx(s.resRow, s.resCol), tf.reshape(s.m, [B, M, N])), param.shape);
        return tf.sub(tf.sub(param, tf.mul(param, c.wdLr)), tf.mul(step, c.lr));
      }),
    );
  });
}

export function cameVectorFallback(
  param: tf.Variable,
  grad: tf.Tensor,
  s: CameVectorState,
  c: CameConsts,
): void {
  tf.tidy(() => {
    s.v.assign(
      tf.tidy(() => tf.add(tf.mul(s.v, c.beta2), tf.mul(tf.add(tf.square(grad), c.eps1), c.oneMinusBeta2))),
    );
    s.m.assign(
      tf.tidy(() => {
        const raw = tf.mul(tf.rsqrt(s.v), grad);
        const rms = tf.sqrt(tf.mean(tf.square(raw)));
        const U = tf.div(raw, tf.maximum(tf.div(rms, c.clipThreshold), 1));
        return tf.add(tf.mul(s.m, c.beta1), tf.mul(U, c.oneMinusBeta1));
      }),
    );
    param.assign(tf.tidy(() => tf.sub(tf.sub(param, tf.mul(param, c.wdLr)), tf.mul(s.m, c.lr))));
  });
}
