import { stateVariable } from '@kstar/core';
import type * as tf from '@tensorflow/tfjs-core';

/**
 * Adafactor's per-parameter state, under HF's `state` keys:
 * - rank ≥ 2 (factored over the LAST two dims, leading dims a batch): `exp_avg_sq_row` of shape[:-1] and
 *   `exp_avg_sq_col` of shape[:-2] ++ shape[-1:] (EMA of the row / column MEANS of g² + eps1);
 * - rank ≤ 1: `exp_avg_sq` of the parameter's shape;
 * - with beta1: `exp_avg` of the parameter's shape (momentum of the lr-scaled update).
 */
export type AdafactorStateKey = 'exp_avg_sq_row' | 'exp_avg_sq_col' | 'exp_avg_sq' | 'exp_avg';

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** HF's `factored = len(shape) >= 2`. */
export const isFactored = (shape: readonly number[]): boolean => shape.length >= 2;

/** The shape of every state tensor a parameter of `shape` gets (in `getWeights` order). */
export function stateShapes(
  shape: readonly number[],
  withMomentum: boolean,
): Partial<Record<AdafactorStateKey, number[]>> {
  const s = [...shape];
  const out: Partial<Record<AdafactorStateKey, number[]>> = isFactored(s)
    ? { exp_avg_sq_row: s.slice(0, -1), exp_avg_sq_col: [...s.slice(0, -2), s[s.length - 1]!] }
    : { exp_avg_sq: s };
  if (withMomentum) out.exp_avg = s;
  return out;
}

/**
 * Bytes of Adafactor state for a parameter of `shape`: 4(B·m + B·n) for [...batch(B), m, n] (4(m+n) for a
 * matrix), 4·numel for vectors, plus 4·numel with momentum (beta1).
 */
export function adafactorStateBytes(shape: readonly number[], withMomentum = false): number {
  let bytes = 0;
  for (const s of Object.values(stateShapes(shape, withMomentum))) bytes += 4 * numel(s);
  return bytes;
}

/** Creates the zero state of a parameter named `paramName` (variables `<paramName>/<key>`). */
export function createState(
  paramName: string,
  shape: readonly number[],
  withMomentum: boolean,
): Partial<Record<AdafactorStateKey, tf.Variable>> {
  const out: Partial<Record<AdafactorStateKey, tf.Variable>> = {};
  for (const [key, s] of Object.entries(stateShapes(shape, withMomentum)) as [
    AdafactorStateKey,
    number[],
  ][]) {
    out[key] = stateVariable(`${paramName}/${key}`, s);
  }
  return out;
}
