import { flashAttentionGradKernel, flashAttentionKernel, type KstarKernel } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';
import type { ParityCase } from './parity.ts';

/**
 * Parity cases for the fused causal attention on `cuda` (kstar-flash-kernels.ts) against the cpu backend, where
 * @kstar/kernels runs its tfjs-ops fallback (the scores materialised: the reference). Odd T, several heads, batch > 1,
 * a query chunk with an offset, GPT-2's head dim (64) and the largest (128), GPT-2's T = 1024 with two heads. On cuda a case fails if the call would
 * fall back. The gradient's o and lse come from the same backend's forward.
 */

function call<A, R>(kernel: KstarKernel<A, R>, args: A): R {
  if (tf.getBackend() === 'cuda' && kernel.which(args) !== 'native')
    throw new Error(`${kernel.name} would run its tfjs-ops fallback on cuda, not the native kernel`);
  return kernel.run(args);
}

/** [B, H, Tq, Tk, hd] and the query offset (Tq + offset ≤ Tk). */
const SHAPES: [[number, number, number, number, number], number][] = [
  [[2, 3, 37, 37, 64], 0],
  [[2, 2, 9, 75, 64], 66],
  [[3, 2, 19, 19, 128], 0],
  [[1, 2, 1024, 1024, 64], 0], // GPT-2's T and head dim: every key tile, the causal edge at each block
];

export function kstarFlashParityCases(): ParityCase[] {
  const cases: ParityCase[] = [];
  for (const [[B, H, tq, tk, hd], off] of SHAPES) {
    const scale = 1 / Math.sqrt(hd);
    const inputs = [
      { shape: [B, H, tq, hd], lo: -2, hi: 2 },
      { shape: [B, H, tk, hd], lo: -2, hi: 2 },
      { shape: [B, H, tk, hd], lo: -1, hi: 1 },
    ];
    const tag = `[${B},${H},${tq},${tk},${hd}]${off ? ` offset ${off}` : ''}`;
    cases.push({
      kernel: 'KstarFlashAttention',
      name: `KstarFlashAttention ${tag}`,
      inputs,
      run: ([q, k, v]) => {
        const r = call(flashAttentionKernel, { q: q!, k: k!, v: v!, scale, queryOffset: off });
        return [r.o, r.lse];
      },
      scale: 10,
    });
    cases.push({
      kernel: 'KstarFlashAttentionGrad',
      name: `KstarFlashAttentionGrad ${tag}`,
      inputs: [...inputs, { shape: [B, H, tq, hd], lo: -1, hi: 1 }],
      run: ([q, k, v, dO]) => {
        const args = { q: q!, k: k!, v: v!, scale, queryOffset: off };
        const { o, lse } = call(flashAttentionKernel, args);
        const g = call(flashAttentionGradKernel, { ...args, o, lse, dO: dO! });
        return [g.dq, g.dk, g.dv];
      },
      scale: 10,
    });
  }
  return cases;
}
