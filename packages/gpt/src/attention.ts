import { InputError } from '@kstar/core';
import { flashAttention, flashAttentionPacked } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Which causal attention the GPT's blocks run (when no plugin supplies `ModelOps.attention`):
 * - `fused`: @kstar/kernels' `flashAttentionPacked` (`KstarFlashAttentionPacked` + its gradient): on WebGPU one fused
 *   dispatch forward and three backward, never writing the [B, H, T, T] scores, reading q, k, v where the qkv
 *   projection wrote them and writing o where the output projection reads it; the tape keeps qkv (already kept by
 *   the projection), o and the row lse.
 * - `ops`: `attentionCore` (scores by matMul, `KstarCausalSoftmax`, probs·v): the tape keeps the probabilities.
 * Default: `fused` on webgpu, `ops` on every other backend (the fused op's fallback there materialises the scores
 * anyway). `KSTAR_ATTENTION=ops` or `=fused` overrides it for every backend.
 */
export type AttentionImpl = 'fused' | 'ops';

/** `KSTAR_ATTENTION` (unset or empty → undefined); an unknown value is an `InputError`. */
export function attentionSetting(): AttentionImpl | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const v = env?.KSTAR_ATTENTION?.trim();
  if (!v) return undefined;
  if (v !== 'fused' && v !== 'ops') {
    throw new InputError(
      `KSTAR_ATTENTION='${v}' is not 'fused' or 'ops': unset it (fused on webgpu) or pick one`,
    );
  }
  return v;
}

/** The attention the GPT runs on `backend` (default: the active one). */
export function attentionImpl(backend: string = tf.getBackend()): AttentionImpl {
  return attentionSetting() ?? (backend === 'webgpu' ? 'fused' : 'ops');
}

/** The model's own causal attention core (the `ops` path): q, k, v [B, H, T, hd] → [B, H, T, hd]. */
export { attentionCore } from './attention-core.ts';

/** The fused path on split heads: q, k, v [B, H, T, hd] → [B, H, T, hd]. */
export function fusedAttentionCore(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, scale: number): tf.Tensor {
  return flashAttention(q, k, v, { scale });
}

/**
 * The fused path the blocks run: qkv [B, T, 3D] as the projection wrote it → o [B, T, D] as the output projection
 * reads it (no head split or merge, forward or backward).
 */
export function fusedAttentionPacked(qkv: tf.Tensor, heads: number, scale: number): tf.Tensor {
  return flashAttentionPacked(qkv, { heads, scale });
}
