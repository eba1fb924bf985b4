import { customOp } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';

/** Additive causal masks as plain JS data, by T: 0 on and below the diagonal, −1e9 above. */
const masks = new Map<number, Float32Array>();

function causalMask(T: number): tf.Tensor2D {
  let m = masks.get(T);
  if (!m) {
    m = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e9;
    masks.set(T, m);
  }
  return tf.tensor2d(m, [T, T]); // [T, T]
}

/** P = softmax(scale·q·kᵀ + mask) [B, H, T, T]; temporaries freed as they go. */
function probs(q: tf.Tensor, k: tf.Tensor, scale: number): tf.Tensor {
  const T = q.shape[2]!;
  const mask = causalMask(T);
  const s = tf.matMul(q, k, false, true); // [B, H, T, T]
  const ss = tf.mul(s, scale);
  s.dispose();
  const sm = tf.add(ss, mask);
  ss.dispose();
  mask.dispose();
  const p = tf.softmax(sm);
  sm.dispose();
  return p;
}

/**
 * Megatron's selective recompute of the attention core: the tape keeps only q, k, v [B, H, T, hd] (3·N·D floats)
 * instead of the [B, H, T, T] probabilities; the backward pass recomputes P from q and k, then
 *   dV = Pᵀ·dO, dP = dO·Vᵀ, dS = scale·P ⊙ (dP − Σ_j dP ⊙ P), dQ = dS·K, dK = dSᵀ·Q.
 * Same function and gradients as the model's causal attention (masked entries have P = 0, so dS = 0 there).
 */
export function selectiveAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, scale: number): tf.Tensor {
  // customOp runs the gradient function inside a tidy (the tape calls it outside any per-node scope).
  const op = customOp(([qi, ki, vi], save) => {
    const p = probs(qi!, ki!, scale); // [B, H, T, T]
    const out = tf.matMul(p, vi!); // [B, H, T, hd]
    p.dispose();
    save([qi!, ki!, vi!]);
    return {
      value: out,
      gradFunc: (dy, saved) => {
        const [qs, ks, vs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const P = probs(qs, ks, scale); // [B, H, T, T], recomputed
        const dV = tf.matMul(P, dy, true, false); // [B, H, T, hd]
        const dP = tf.matMul(dy, vs, false, true); // [B, H, T, T]
        const dPP = tf.mul(dP, P);
        dP.dispose();
        const rowSum = tf.sum(dPP, -1, true); // [B, H, T, 1]
        const pr = tf.mul(P, rowSum);
        P.dispose();
        rowSum.dispose();
        const d0 = tf.sub(dPP, pr);
        dPP.dispose();
        pr.dispose();
        const dS = tf.mul(d0, scale); // [B, H, T, T]
        d0.dispose();
        const dQ = tf.matMul(dS, ks); // [B, H, T, hd]
        const dK = tf.matMul(dS, qs, true, false); // [B, H, T, hd]
        dS.dispose();
        return [dQ, dK, dV];
      },
    };
  });
  return op(q, k, v);
}
