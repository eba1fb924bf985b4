import * as tf from '@tensorflow/tfjs-core';
import { customOp, step } from './custom-grad.ts';

/**
 * Mean cross-entropy of `logits` [N, V] against int32 `targets` [N]: `mean_n (logsumexp(z_n) − z_n[t_n])`.
 * Custom gradient (the llm.c formulation): the tape keeps `logits` (the matMul output: no copy on cpu/webgpu),
 * `lse` [N,1] and `targets`; backward recomputes `softmax = exp(z − lse)` and returns `(softmax − onehot)·dy/N`.
 * Uses only ops present on cpu, wasm and webgpu (no gather gradient). ≤ 2 temporaries of [N, V] at a time.
 */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  const [N, V] = logits.shape as [number, number];
  const op = customOp(([z], save) => {
    const lse = tf.logSumExp(z!, -1, true); // [N, 1]
    const picked = step(
      step(tf.oneHot(targets, V, 1, 0, 'float32'), (oh) => tf.mul(z!, oh)),
      (t) => tf.sum(t, -1, true),
    ); // [N, 1]
    const value = step(tf.sub(lse, picked), (t) => tf.mean(t)); // []
    picked.dispose();
    save([z!, lse, targets]);
    return {
      value,
      gradFunc: (dy, [zs, l, t]) => {
        const scale = tf.div(dy, N); // []
        const dz = step(
          step(
            step(tf.sub(zs!, l!), (u) => tf.exp(u)),
            (probs) => {
              const oh = tf.oneHot(t!, V, 1, 0, 'float32'); // [N, V]
              const out = tf.sub(probs, oh);
              oh.dispose();
              return out;
            },
          ),
          (u) => tf.mul(u, scale),
        ); // [N, V]
        return [dz];
      },
    };
  });
  return op(logits);
}
