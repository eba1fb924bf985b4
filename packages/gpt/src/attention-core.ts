import * as tf from '@tensorflow/tfjs-core';
import { causalSoftmax } from './causal-softmax.ts';

/** The model's causal attention by tfjs ops: q, k, v [B, H, T, hd] → [B, H, T, hd] (the tape keeps the probabilities). */
export function attentionCore(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, scale: number): tf.Tensor {
  return tf.tidy(() => {
    const scores = tf.matMul(q, k, false, true); // [B, H, T, T]
    const probs = causalSoftmax(scores, scale); // [B, H, T, T]
    return tf.matMul(probs, v); // [B, H, T, hd]
  });
}
