import * as tf from '@tensorflow/tfjs-core';
import { KVCache } from './kv-cache.ts';
import type { GPTModel } from './model.ts';

export interface GenerateOptions {
  /** Tokens to generate. */
  tokens: number;
  /** 0: greedy (argmax); otherwise logits are divided by it before the softmax. */
  temperature: number;
  /** Sample among the K most likely tokens only (0 or absent: all). */
  topK?: number;
  /** Uniform draws in [0, 1): a seeded generator for reproducible text. */
  random: () => number;
  /**
   * Keep every layer's keys and values (`KVCache`) so each new token runs its own row only (default true). The
   * tokens are the same as without it: it serves while the sequence fits the context; past `blockSize` tokens the
   * window slides, every position shifts, and each token recomputes its window, as without the cache.
   */
  kvCache?: boolean;
}

/** The next token from one row of logits: argmax at temperature 0, else a draw from softmax(logits/T) over the top K. */
export function pickToken(
  logits: Float32Array,
  options: Pick<GenerateOptions, 'temperature' | 'topK' | 'random'>,
): number {
  if (options.temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let ids = Array.from(logits.keys());
  if (options.topK && options.topK < logits.length) {
    ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
    ids = ids.slice(0, options.topK);
  }
  // Softmax in float64 over the kept ids.
  const max = Math.max(...ids.map((i) => logits[i]!));
  const weights = ids.map((i) => Math.exp((logits[i]! - max) / options.temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let u = options.random() * total;
  for (let k = 0; k < ids.length; k++) {
    u -= weights[k]!;
    if (u < 0) return ids[k]!;
  }
  return ids.at(-1)!;
}

/**
 * Generates `options.tokens` tokens after `prompt` (the last `blockSize` tokens are the context), calling `onToken`
 * with each. `params`: weights to read instead of the model's variables (materialized master weights).
 */
export async function generate(
  model: GPTModel,
  prompt: readonly number[],
  options: GenerateOptions,
  onToken: (id: number) => void,
  params?: Record<string, tf.Tensor>,
): Promise<number[]> {
  const ids = [...prompt];
  const out: number[] = [];
  const { blockSize, vocabSize: V } = model.config;
  const cache = options.kvCache === false ? undefined : new KVCache(model.config);
  const weights = params ?? model.paramRecord();
  try {
    for (let n = 0; n < options.tokens; n++) {
      const cached = cache !== undefined && ids.length > 0 && ids.length <= blockSize;
      // With the cache: only the tokens it has not seen (the whole prompt first, then one); else the whole window.
      const input = cached ? ids.slice(cache.length) : ids.slice(-blockSize);
      const T = input.length;
      const last = tf.tidy(() => {
        const tokens = tf.tensor2d(Int32Array.from(input), [1, T], 'int32');
        const logits = cached ? cache.forward(tokens, weights) : model.forwardLogits(tokens, params); // [1, T, V]
        return tf.reshape(tf.slice(logits, [0, T - 1, 0], [1, 1, V]), [V]); // [V]
      });
      const row = (await last.data()) as Float32Array;
      last.dispose();
      const id = pickToken(row, options);
      ids.push(id);
      out.push(id);
      onToken(id);
    }
  } finally {
    cache?.dispose();
  }
  return out;
}
