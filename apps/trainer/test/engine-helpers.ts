import { relL2Error } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';

/** Random byte-level tokens, seeded: int32 inputs and targets [B, T] (independent draws). */
export function tokenBatch(B: number, T: number, seed: number) {
  return tf.tidy(() => ({
    inputs: tf.randomUniform([B, T], 0, 256, 'int32', seed),
    targets: tf.randomUniform([B, T], 0, 256, 'int32', seed + 1),
  }));
}

/** ‖a − b‖ / ‖b‖ over all elements (L2; 0/0 counts as 0). */
export const relError = (a: tf.Tensor, b: tf.Tensor): number => relL2Error(a.dataSync(), b.dataSync());
