import * as tf from '@tensorflow/tfjs-core';
import { customOp, step } from './custom-grad.ts';

const C = Math.sqrt(2 / Math.PI);
const A = 0.044715;

/** `c·(h + a·h³)` = `c·h·(1 + a·h²)` from `h` and `sq = h²`. */
function inner(h: tf.Tensor, sq: tf.Tensor): tf.Tensor {
  return step(
    step(
      step(tf.mul(sq, A), (t) => tf.add(t, 1)),
      (t) => tf.mul(t, h),
    ),
    (t) => tf.mul(t, C),
  );
}

/**
 * GELU, tanh approximation (GPT-2): `0.5·h·(1 + tanh(c·(h + a·h³)))`, c = √(2/π), a = 0.044715.
 * Custom gradient: the tape keeps only the input `h` (already kept by the matMul that made it), and backward
 * recomputes `t = tanh(u)`: `dh = dy·(0.5·(1 + t) + 0.5·c·h·(1 − t²)·(1 + 3a·h²))`.
 * Temporaries are disposed as soon as they are used: forward holds ≤ 2, backward ≤ 4 buffers of h's size.
 */
const geluOp = customOp(([h], save) => {
  const x = h!;
  const sq = tf.square(x); // [N, 4D]
  const u = inner(x, sq);
  sq.dispose();
  const value = step(
    step(
      step(
        step(u, (v) => tf.tanh(v)),
        (v) => tf.add(v, 1),
      ),
      (v) => tf.mul(v, x),
    ),
    (v) => tf.mul(v, 0.5),
  );
  save([x]);
  return {
    value,
    gradFunc: (dy, [hs]) => {
      const hv = hs!;
      const sq = tf.square(hv);
      const t = step(inner(hv, sq), (u) => tf.tanh(u)); // tanh(u)
      const du = step(
        step(sq, (s) => tf.mul(s, 3 * A)),
        (s) => tf.add(s, 1),
      ); // 1 + 3a·h²
      const right = step(
        step(
          step(
            step(tf.square(t), (s) => tf.sub(1, s)),
            (s) => tf.mul(s, du),
          ),
          (s) => tf.mul(s, hv),
        ),
        (s) => tf.mul(s, 0.5 * C),
      ); // 0.5·c·h·(1 − t²)·(1 + 3a·h²)
      du.dispose();
      const left = step(
        step(t, (s) => tf.add(s, 1)),
        (s) => tf.mul(s, 0.5),
      ); // 0.5·(1 + t)
      const deriv = tf.add(left, right);
      left.dispose();
      right.dispose();
      return [step(deriv, (d) => tf.mul(dy, d))];
    },
  };
});

/** GELU (tanh approximation) of any tensor. */
export function gelu(h: tf.Tensor): tf.Tensor {
  return geluOp(h);
}
