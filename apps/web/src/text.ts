import type { Batch } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';

/** The page's built-in corpus (written for this page): a few paragraphs of plain English, trained on as UTF-8 bytes. */
export const BUILT_IN_TEXT = `The memory of a training step is the sum of a few terms: the weights, their gradients, the optimizer's state,
the saved activations and whatever temporaries the kernels need. Each term can be made smaller. Eight-bit moments keep
the optimizer's state in a quarter of the space. A twenty-four-bit split keeps master weights in three bytes instead of
four. Checkpointing keeps only the input of each segment and recomputes the rest when the backward pass needs it.
A small model learns the shape of a small text quickly: first the frequent letters, then the spaces between words,
then the short words that come back again and again. The loss falls, the samples start to look like words, and the
ledger shows where every byte went. Nothing here leaves the page: the text, the model and its state live in this tab.
`;

/** Byte-level token ids of the built-in text (vocabulary 256, like the tiny preset). */
export function textTokens(text = BUILT_IN_TEXT): Int32Array {
  return Int32Array.from(new TextEncoder().encode(text));
}

/** A deterministic batch of `batch` windows of `seq` tokens, next-token targets: inputs, targets int32 [B, T]. */
export function sampleBatch(tokens: Int32Array, batch: number, seq: number, step: number): Batch {
  const inputs = new Int32Array(batch * seq);
  const targets = new Int32Array(batch * seq);
  for (let b = 0; b < batch; b++) {
    // A multiplicative hash of (step, row) picks the window start: reproducible runs without a RNG state.
    const start = ((step * 2654435761 + b * 40503) >>> 0) % (tokens.length - seq - 1);
    inputs.set(tokens.subarray(start, start + seq), b * seq);
    targets.set(tokens.subarray(start + 1, start + seq + 1), b * seq);
  }
  return {
    inputs: tf.tensor2d(inputs, [batch, seq], 'int32'),
    targets: tf.tensor2d(targets, [batch, seq], 'int32'),
  };
}
