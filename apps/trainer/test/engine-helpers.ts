import * as tf from '@tensorflow/tfjs';

/** Random byte-level tokens, seeded: int32 inputs and targets [B, T] (independent draws). */
export function tokenBatch(B: number, T: number, seed: number) {
  return tf.tidy(() => ({
    inputs: tf.randomUniform([B, T], 0, 256, 'int32', seed),
    targets: tf.randomUniform([B, T], 0, 256, 'int32', seed + 1),
  }));
}

/** ‖a − b‖ / ‖b‖ over all elements (L2; 0/0 counts as 0). */
export function relError(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    num += (x[i]! - y[i]!) ** 2;
    den += y[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}
