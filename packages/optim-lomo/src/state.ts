import { stateVariable } from '@kstar/core';
import type * as tf from '@tensorflow/tfjs-core';

/**
 * AdaLomo's per-parameter state, under the reference's names:
 * - rank ≥ 2, factored over the LAST two dims (leading dims a batch): `exp_avg_sq_row` of shape[:-1] and
 *   `exp_avg_sq_col` of shape[:-2] ++ shape[-1:] (EMAs of the row / column MEANS of g² + eps1). The reference
 *   (`lomo_optim.AdaLomo`) handles rank 2 only; rank > 2 is K*'s extension, HF Adafactor's rule;
 * - rank ≤ 1: `exp_avg_sq` of the parameter's shape (a scalar parameter gets a scalar).
 * No first moment.
 */
export type AdaLomoStateKey = 'exp_avg_sq_row' | 'exp_avg_sq_col' | 'exp_avg_sq';

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The shape of every state tensor a parameter of `shape` gets. */
export function adalomoStateShapes(shape: readonly number[]): Partial<Record<AdaLomoStateKey, number[]>> {
  const s = [...shape];
  return s.length >= 2
    ? { exp_avg_sq_row: s.slice(0, -1), exp_avg_sq_col: [...s.slice(0, -2), s[s.length - 1]!] }
    : { exp_avg_sq: s };
}

/** Bytes of AdaLomo state: 4(m+n) for an m×n matrix (4·B(m+n) for [...B, m, n]), 4n for a vector. */
export function adalomoStateBytes(shape: readonly number[]): number {
  let bytes = 0;
  for (const s of Object.values(adalomoStateShapes(shape))) bytes += 4 * numel(s);
  return bytes;
}

/** LOMO keeps no state. */
export function lomoStateBytes(_shape?: readonly number[]): number {
  return 0;
}

/** Zero float32 state variables for a parameter named `paramName` (variables `<paramName>/<key>`), refCount 1. */
export function createAdaLomoState(
  paramName: string,
  shape: readonly number[],
): Partial<Record<AdaLomoStateKey, tf.Variable>> {
  const out: Partial<Record<AdaLomoStateKey, tf.Variable>> = {};
  for (const [key, s] of Object.entries(adalomoStateShapes(shape)) as [AdaLomoStateKey, number[]][]) {
    out[key] = stateVariable(`${paramName}/${key}`, s);
  }
  return out;
}
