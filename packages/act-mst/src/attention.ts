import { InputError } from '@kstar/core';
import { flashAttention, flashAttentionKernel } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { chunkedOp, concatOwned, step } from './custom-op.ts';
import type { Range } from './split.ts';

/** Additive causal mask for query rows [s, s + c) against keys [0, e), e = s + c: −1e9 where key j > query s + i. */
function chunkMask(s: number, c: number): tf.Tensor {
  const e = s + c;
  const m = new Float32Array(c * e);
  for (let i = 0; i < c; i++) for (let j = s + i + 1; j < e; j++) m[i * e + j] = -1e9;
  return tf.tensor2d(m, [c, e]); // [c, e]
}

/**
 * Causal attention over query chunks: q, k, v [B, H, T, hd] → softmax(scale·q·kᵀ + mask)·v [B, H, T, hd].
 * Query chunk [s, s + c) only needs keys [0, s + c) (causality), so its scores are [B, H, c, s + c] and the [T, T]
 * matrix never exists whole. Only q, k, v are saved; the backward recomputes each chunk's probabilities and
 * applies the softmax gradient by hand (as the model's causal softmax does: ds = scale·p·(dp − Σ dp·p)):
 *   dv[0, e) += pᵀ·dy_c, dp = dy_c·vᵀ, dq_c = ds·k[0, e), dk[0, e) += dsᵀ·q_c.
 * Chunks are walked last to first, so the first (largest) dk/dv parts set the full-length sums.
 */
export function chunkedAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  scale: number,
  ranges: readonly Range[],
): tf.Tensor {
  const [B, H, T, hd] = q.shape as [number, number, number, number];
  const rows = (t: tf.Tensor, start: number, size: number) => tf.slice(t, [0, 0, start, 0], [B, H, size, hd]);
  /** Probabilities of query chunk r against keys [0, e): [B, H, c, e]. */
  const probs = (qc: tf.Tensor, kc: tf.Tensor, r: Range) => {
    const mask = chunkMask(r.start, r.size); // [c, e]
    const p = step(
      step(
        step(tf.matMul(qc, kc, false, true), (t) => tf.mul(t, scale)),
        (t) => tf.add(t, mask),
      ),
      (t) => tf.softmax(t),
    ); // [B, H, c, e]
    mask.dispose();
    return p;
  };
  const op = chunkedOp(([qi, ki, vi], save) => {
    const outs = ranges.map((r) =>
      tf.tidy(() => {
        const e = r.start + r.size;
        const p = probs(rows(qi!, r.start, r.size), rows(ki!, 0, e), r); // [B, H, c, e]
        return tf.matMul(p, rows(vi!, 0, e)); // [B, H, c, hd]
      }),
    );
    save([qi!, ki!, vi!]);
    return {
      value: concatOwned(outs, 2), // [B, H, T, hd]
      gradFunc: (dy, [qs, ks, vs]) => {
        const dqs: tf.Tensor[] = [];
        let dk: tf.Tensor | undefined; // [B, H, T, hd]
        let dv: tf.Tensor | undefined; // [B, H, T, hd]
        const addPrefix = (acc: tf.Tensor | undefined, part: tf.Tensor, e: number) => {
          if (!acc)
            return e === T
              ? part
              : tf.tidy(() =>
                  tf.pad(part, [
                    [0, 0],
                    [0, 0],
                    [0, T - e],
                    [0, 0],
                  ]),
                );
          const sum = tf.tidy(() =>
            tf.add(
              acc,
              e === T
                ? part
                : tf.pad(part, [
                    [0, 0],
                    [0, 0],
                    [0, T - e],
                    [0, 0],
                  ]),
            ),
          );
          acc.dispose();
          part.dispose();
          return sum;
        };
        for (let i = ranges.length - 1; i >= 0; i--) {
          const r = ranges[i]!;
          const e = r.start + r.size;
          const [dq, dkc, dvc] = tf.tidy(() => {
            const qc = rows(qs!, r.start, r.size); // [B, H, c, hd]
            const kc = rows(ks!, 0, e); // [B, H, e, hd]
            const vc = rows(vs!, 0, e); // [B, H, e, hd]
            const dyc = rows(dy, r.start, r.size); // [B, H, c, hd]
            const p = probs(qc, kc, r); // [B, H, c, e]
            const dvc = tf.matMul(p, dyc, true, false); // [B, H, e, hd]
            // ds = scale·(dp·p − p·Σ dp·p), one [B, H, c, e] temporary at a time besides p.
            const dyp = step(tf.matMul(dyc, vc, false, true), (dp) => tf.mul(dp, p)); // [B, H, c, e]
            const rowSum = tf.sum(dyp, -1, true); // [B, H, c, 1]
            const pr = step(p, (t) => tf.mul(t, rowSum)); // frees p
            const ds = step(
              step(dyp, (t) => tf.sub(t, pr)),
              (t) => tf.mul(t, scale),
            ); // [B, H, c, e]
            pr.dispose();
            return [tf.matMul(ds, kc), tf.matMul(ds, qc, true, false), dvc]; // dq [c], dk [e], dv [e]
          });
          dqs.unshift(dq!);
          dk = addPrefix(dk, dkc!, e);
          dv = addPrefix(dv, dvc!, e);
        }
        return [concatOwned(dqs, 2), dk!, dv!];
      },
    };
  });
  return op(q, k, v);
}

/**
 * How MsT runs attention (`KSTAR_MST_ATTENTION`): `auto` (the default) runs @kstar/kernels' fused causal attention
 * on WebGPU where its native kernel runs (float32, hd a multiple of 4 up to 128) and `chunkedAttention` elsewhere;
 * `chunked` always runs `chunkedAttention` (the path before session 5, for comparisons).
 */
export function mstAttentionSetting(): 'auto' | 'chunked' {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const v = env?.KSTAR_MST_ATTENTION?.trim() || 'auto';
  if (v !== 'auto' && v !== 'chunked')
    throw new InputError(`KSTAR_MST_ATTENTION is '${v}'; unset it (auto) or set it to 'chunked'`);
  return v;
}

/**
 * MsT's attention op: q, k, v [B, H, T, hd] → [B, H, T, hd]. On WebGPU, where the fused kernel runs natively, it
 * takes the whole sequence in one call: it walks query tiles itself (128 rows a workgroup, keys up to the tile's last
 * row), so the [T, T] scores never exist, forward or backward, and its working set (o, lse; dq, dk, dv) is O(N·D),
 * below the chunked op's 3·G·c·T + 6·N·D. Elsewhere (cpu and wasm, where its fallback would materialise the scores;
 * cuda, whose default attention is the ops path) the query chunks of `chunkedAttention` bound the working set.
 */
export const mstAttention: typeof chunkedAttention = (q, k, v, scale, ranges) => {
  const fused =
    mstAttentionSetting() === 'auto' &&
    tf.getBackend() === 'webgpu' &&
    flashAttentionKernel.which({ q, k, v, scale, queryOffset: 0 }) === 'native';
  return fused ? flashAttention(q, k, v, { scale }) : chunkedAttention(q, k, v, scale, ranges);
};
