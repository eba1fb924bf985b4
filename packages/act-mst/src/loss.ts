import * as tf from '@tensorflow/tfjs-core';
import { accumulate, chunkedOp, concatOwned, step } from './custom-op.ts';
import { splitBalanced } from './split.ts';

/**
 * LM head + mean cross-entropy over row chunks: h [N, D], w [V, D], int32 targets [N] →
 * (1/N)·Σ_n (logsumexp(z_n) − z_n[t_n]) with z = h·wᵀ, never holding more than one chunk's [c, V] logits.
 * Loss = (Σ over chunks of the chunk's SUMMED cross-entropy) / N, N counting every row (uneven tails included; the
 * reference's `n // M` slicing drops the tail). Saved: h, w, targets and the per-row logsumexp [N, 1].
 * Backward per chunk: recompute z_c, g_c = (exp(z_c − lse_c) − onehot)·dy/N [c, V], dh_c = g_c·w, and
 * dW += g_cᵀ·h_c. dW is returned once as w's gradient (the reference adds it into `.grad` AND returns it: 2×).
 */
export function chunkedLinearCrossEntropy(
  h: tf.Tensor,
  w: tf.Tensor,
  targets: tf.Tensor,
  chunks: number,
): tf.Scalar {
  const N = h.shape[0]!;
  const V = w.shape[0]!;
  const ranges = splitBalanced(N, chunks);
  const rows = (t: tf.Tensor, start: number, size: number) => tf.slice(t, [start, 0], [size, t.shape[1]!]);
  const tgt = (start: number, size: number) => tf.slice(targets, [start], [size]); // [c]
  const op = chunkedOp(([hi, wi], save) => {
    const lses: tf.Tensor[] = [];
    let total: tf.Tensor | undefined; // []
    for (const r of ranges) {
      const [lse, sum] = tf.tidy(() => {
        const z = tf.matMul(rows(hi!, r.start, r.size), wi!, false, true); // [c, V]
        const lse = tf.logSumExp(z, -1, true); // [c, 1]
        const oh = tf.oneHot(tgt(r.start, r.size), V, 1, 0, 'float32'); // [c, V]
        const picked = step(
          step(z, (t) => tf.mul(t, oh)),
          (t) => tf.sum(t, -1, true),
        ); // z[t] [c, 1]
        oh.dispose();
        return [lse, tf.sum(tf.sub(lse, picked))];
      });
      lses.push(lse!);
      if (total) {
        const t = tf.add(total, sum!);
        total.dispose();
        sum!.dispose();
        total = t;
      } else total = sum;
    }
    const lse = concatOwned(lses, 0); // [N, 1]
    save([hi!, wi!, targets, lse]);
    const value = tf.div(total!, N); // []
    total!.dispose();
    return {
      value,
      gradFunc: (dy, [hs, ws, ts, ls]) => {
        const g = tf.div(dy, N); // []
        const dhs: tf.Tensor[] = [];
        let dw: tf.Tensor[] | undefined; // [V, D]
        for (const r of ranges) {
          const [dh, dwc] = tf.tidy(() => {
            const hc = rows(hs!, r.start, r.size); // [c, D]
            const lse = rows(ls!, r.start, r.size); // [c, 1]
            const probs = step(
              step(tf.matMul(hc, ws!, false, true), (z) => tf.sub(z, lse)),
              (t) => tf.exp(t),
            ); // softmax of the recomputed logits [c, V]
            const oh = tf.oneHot(tf.slice(ts!, [r.start], [r.size]), V, 1, 0, 'float32'); // [c, V]
            const dz = step(
              step(probs, (p) => tf.sub(p, oh)),
              (t) => tf.mul(t, g),
            ); // [c, V]
            oh.dispose();
            return [tf.matMul(dz, ws!), tf.matMul(dz, hc, true, false)]; // [c, D], [V, D]
          });
          dhs.push(dh!);
          dw = accumulate(dw, [dwc!]);
        }
        g.dispose();
        return [concatOwned(dhs, 0), dw![0]!]; // [N, D], [V, D]
      },
    };
  });
  return op(h, w) as tf.Scalar;
}
