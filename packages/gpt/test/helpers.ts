import * as tf from '@tensorflow/tfjs';
import type { GPTConfig } from '../src/index.ts';

export const MICRO: GPTConfig = { vocabSize: 11, nLayer: 2, nHead: 2, nEmbd: 8, blockSize: 8 };

/** Deterministic int32 [B, T] tokens in [0, V). */
export function tokens(B: number, T: number, V: number, salt = 0): tf.Tensor2D {
  const data = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) data[i] = (i * 7 + salt * 13 + ((i * i) % 5)) % V;
  return tf.tensor2d(data, [B, T], 'int32');
}

export function batchOf(B: number, T: number, V: number, salt = 0) {
  return { inputs: tokens(B, T, V, salt), targets: tokens(B, T, V, salt + 1) };
}
