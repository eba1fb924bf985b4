import type { ParamInfo } from '@kstar/core';
import { stateVariable } from '@kstar/core';
import type * as tf from '@tensorflow/tfjs-core';
import type { Adam8bitHparams } from './hparams.ts';

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Whether a parameter of this size and role gets 8-bit state (else float32 m and v). */
export function isQuantized(
  n: number,
  role: ParamInfo['role'] | undefined,
  hp: Pick<Adam8bitHparams, 'minQuantizedSize' | 'float32Embeddings'>,
): boolean {
  if (hp.float32Embeddings && role === 'embedding') return false;
  return n >= hp.minQuantizedSize && n > 0;
}

/**
 * Bytes of 8-bit Adam state for a parameter of n elements: quantized 2·4⌈n/4⌉ (m and v codes, four per int32) +
 * 2·4⌈n/B⌉ (their float32 absmax per block); float32 8n below `minQuantizedSize` (and for embeddings with
 * `float32Embeddings`). 2 + 8/B bytes per element: 2.031 for B = 256.
 */
export function adam8bitStateBytes(
  shape: readonly number[],
  role: ParamInfo['role'] | undefined,
  hp: Pick<Adam8bitHparams, 'minQuantizedSize' | 'float32Embeddings' | 'blockSize'>,
): number {
  const n = numel(shape);
  if (!isQuantized(n, role, hp)) return 8 * n;
  return 2 * 4 * Math.ceil(n / 4) + 2 * 4 * Math.ceil(n / hp.blockSize);
}

/** The code word of four signed-map zeros (code 127 each): 0x7f7f7f7f. */
export const SIGNED_ZERO_WORD = 0x7f7f7f7f;

/** State of one parameter: 8-bit (`c1`, `a1`, `c2`, `a2`) or float32 (`m`, `v`). */
export type Adam8bitStateVars =
  | { c1: tf.Variable; a1: tf.Variable; c2: tf.Variable; a2: tf.Variable }
  | { m: tf.Variable; v: tf.Variable };

/** Fresh state for `name` (zeros: m codes 127 = +0 in the signed map, v codes 0, absmax 0). */
export function createState(
  name: string,
  shape: readonly number[],
  quantized: boolean,
  blockSize: number,
): Record<string, tf.Variable> {
  const n = numel(shape);
  if (!quantized) {
    return {
      m: stateVariable(`${name}/m`, shape),
      v: stateVariable(`${name}/v`, shape),
    };
  }
  const words = [Math.ceil(n / 4)];
  const blocks = [Math.ceil(n / blockSize)];
  return {
    c1: stateVariable(`${name}/m_codes`, words, { dtype: 'int32', fill: SIGNED_ZERO_WORD }),
    a1: stateVariable(`${name}/m_absmax`, blocks),
    c2: stateVariable(`${name}/v_codes`, words, { dtype: 'int32' }),
    a2: stateVariable(`${name}/v_absmax`, blocks),
  };
}
