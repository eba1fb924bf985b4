import * as tf from '@tensorflow/tfjs';

/** max |a − b| / max |b|: the relative error of a whole tensor (1e-4 for gradients, 1e-5 for losses). */
export function relErr(a: tf.Tensor | ArrayLike<number>, b: tf.Tensor | ArrayLike<number>): number {
  const x = a instanceof tf.Tensor ? a.dataSync() : a;
  const y = b instanceof tf.Tensor ? b.dataSync() : b;
  if (x.length !== y.length) throw new Error(`relErr: lengths ${x.length} and ${y.length} differ`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
    scale = Math.max(scale, Math.abs(y[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}

/** Deterministic float32 normal tensor. */
export function randn(shape: number[], seed: number, std = 1): tf.Tensor {
  return tf.randomNormal(shape, 0, std, 'float32', seed);
}

/** Deterministic int32 targets in [0, V). */
export function targetsOf(N: number, V: number, salt = 0): tf.Tensor1D {
  const d = new Int32Array(N);
  for (let i = 0; i < N; i++) d[i] = (i * 7 + salt * 13 + ((i * i) % 5)) % V;
  return tf.tensor1d(d, 'int32');
}

/** Value and gradients (w.r.t. every input) of f at `inputs`, with upstream gradient `dy`. */
export function valueAndGrads(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  dy?: tf.Tensor,
): { value: tf.Tensor; grads: tf.Tensor[] } {
  return tf.valueAndGrads((...xs: tf.Tensor[]) => f(...xs))(inputs, dy);
}
