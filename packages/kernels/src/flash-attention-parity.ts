import * as tf from '@tensorflow/tfjs-core';
import { flashAttentionGradKernel, flashAttentionKernel } from './flash-attention.ts';
import { PARITY_TOLERANCE, type ParityRow, parityRelErr, parityValues } from './fused-parity.ts';

/**
 * Parity of the fused attention (`KstarFlashAttention`, `KstarFlashAttentionGrad`) on the active backend: o, lse, dq,
 * dk, dv of the native kernels against the tfjs-ops fallback and, where `float64` is set, both against a float64 JS
 * reference written from the definition (scores, mask, softmax, and the chain rule by hand). Rows named
 * `KstarFlashAttention.o` etc. in the `ParityRow` format of `fusedKernelParity`.
 */
export interface FlashParityCase {
  /** [B, H, Tq, Tk, hd]. */
  shape: [number, number, number, number, number];
  /** Query offset (Tq + offset ≤ Tk). */
  offset: number;
  float64: boolean;
}

/**
 * Small odd shapes for CI: T not a multiple of any tile, head dims 16 and 8, query offsets. (hd = 64 is in
 * `GPT2_FLASH_CASES`: Mesa lavapipe, CI's WebGPU, spends over a minute of CPU compiling its programs.)
 */
export const TINY_FLASH_CASES: FlashParityCase[] = [
  { shape: [2, 3, 37, 37, 16], offset: 0, float64: true },
  { shape: [1, 2, 70, 70, 8], offset: 0, float64: true },
  { shape: [2, 1, 21, 50, 16], offset: 29, float64: true },
  { shape: [1, 2, 9, 75, 8], offset: 40, float64: true },
];

/**
 * For a real GPU: gpt2-124m's attention at T = 1024, batch 8 (against the fallback only: float64 loops would take
 * minutes), and hd = 64 at odd sizes against float64 too.
 */
export const GPT2_FLASH_CASES: FlashParityCase[] = [
  { shape: [8, 12, 1024, 1024, 64], offset: 0, float64: false },
  { shape: [1, 2, 70, 70, 64], offset: 0, float64: true },
  { shape: [1, 2, 9, 75, 64], offset: 40, float64: true },
];

interface Ref {
  o: Float64Array;
  lse: Float64Array;
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
}

/** Float64 causal attention and its gradient for loss = Σ o·dO. */
export function flashReference(
  c: FlashParityCase,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dO: Float32Array,
  scale: number,
): Ref {
  const [B, H, tq, tk, hd] = c.shape;
  const bh = B * H;
  const o = new Float64Array(bh * tq * hd);
  const lse = new Float64Array(bh * tq);
  const dq = new Float64Array(bh * tq * hd);
  const dk = new Float64Array(bh * tk * hd);
  const dv = new Float64Array(bh * tk * hd);
  const p = new Float64Array(tk);
  const dp = new Float64Array(tk);
  for (let b = 0; b < bh; b++) {
    for (let i = 0; i < tq; i++) {
      const qi = (b * tq + i) * hd;
      const last = Math.min(c.offset + i, tk - 1);
      let m = Number.NEGATIVE_INFINITY;
      for (let j = 0; j <= last; j++) {
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[qi + d]! * k[(b * tk + j) * hd + d]!;
        p[j] = s * scale;
        m = Math.max(m, p[j]!);
      }
      let z = 0;
      for (let j = 0; j <= last; j++) z += Math.exp(p[j]! - m);
      lse[b * tq + i] = m + Math.log(z);
      for (let j = 0; j <= last; j++) p[j] = Math.exp(p[j]! - m) / z;
      for (let d = 0; d < hd; d++) {
        let acc = 0;
        for (let j = 0; j <= last; j++) acc += p[j]! * v[(b * tk + j) * hd + d]!;
        o[qi + d] = acc;
      }
      // Backward: dv_j += p_j·dO_i; dp_j = dO_i·v_j; ds_j = p_j·(dp_j − Σ p·dp); dq_i = scale·Σ ds·k; dk_j += scale·ds_j·q_i.
      let sum = 0;
      for (let j = 0; j <= last; j++) {
        let acc = 0;
        for (let d = 0; d < hd; d++) acc += dO[qi + d]! * v[(b * tk + j) * hd + d]!;
        dp[j] = acc;
        sum += p[j]! * acc;
      }
      for (let j = 0; j <= last; j++) {
        const kj = (b * tk + j) * hd;
        const ds = p[j]! * (dp[j]! - sum) * scale;
        for (let d = 0; d < hd; d++) {
          dv[kj + d] += p[j]! * dO[qi + d]!;
          dq[qi + d] += ds * k[kj + d]!;
          dk[kj + d] += ds * q[qi + d]!;
        }
      }
    }
  }
  return { o, lse, dq, dk, dv };
}

async function read(t: tf.Tensor): Promise<Float32Array> {
  const d = (await t.data()) as Float32Array;
  t.dispose();
  return d;
}

export async function flashAttentionParity(cases: FlashParityCase[]): Promise<ParityRow[]> {
  const rows: ParityRow[] = [];
  for (const [n, c] of cases.entries()) {
    const [B, H, tq, tk, hd] = c.shape;
    const scale = 1 / Math.sqrt(hd);
    const qa = parityValues(B * H * tq * hd, 101 + n);
    const ka = parityValues(B * H * tk * hd, 202 + n);
    const va = parityValues(B * H * tk * hd, 303 + n);
    const ga = parityValues(B * H * tq * hd, 404 + n, -1, 1);
    const q = tf.tensor4d(qa, [B, H, tq, hd]);
    const k = tf.tensor4d(ka, [B, H, tk, hd]);
    const v = tf.tensor4d(va, [B, H, tk, hd]);
    const dO = tf.tensor4d(ga, [B, H, tq, hd]);
    const args = { q, k, v, scale, queryOffset: c.offset };
    const impl = flashAttentionKernel.which(args);
    const nat = flashAttentionKernel.run(args);
    const ref = flashAttentionKernel.run(args, { impl: 'fallback' });
    const gNat = flashAttentionGradKernel.run({ ...args, o: nat.o, lse: nat.lse, dO });
    const gRef = flashAttentionGradKernel.run({ ...args, o: ref.o, lse: ref.lse, dO }, { impl: 'fallback' });
    const exact = c.float64 ? flashReference(c, qa, ka, va, ga, scale) : null;
    const outs: [keyof Ref, tf.Tensor, tf.Tensor][] = [
      ['o', nat.o, ref.o],
      ['lse', nat.lse, ref.lse],
      ['dq', gNat.dq, gRef.dq],
      ['dk', gNat.dk, gRef.dk],
      ['dv', gNat.dv, gRef.dv],
    ];
    for (const [name, a, b] of outs) {
      const na = await read(a);
      const fb = await read(b);
      const ex = exact ? exact[name] : null;
      const vsFallback = parityRelErr(na, fb);
      const vs64 = ex ? parityRelErr(na, ex) : null;
      rows.push({
        kernel: `KstarFlashAttention.${name}${c.offset ? ` (offset ${c.offset})` : ''}`,
        shape: [...c.shape],
        relErrVsFallback: vsFallback,
        relErrVsFloat64: vs64,
        fallbackRelErrVsFloat64: ex ? parityRelErr(fb, ex) : null,
        impl,
        pass: vsFallback <= PARITY_TOLERANCE && (vs64 === null || vs64 <= PARITY_TOLERANCE),
      });
    }
    tf.dispose([q, k, v, dO]);
  }
  return rows;
}
