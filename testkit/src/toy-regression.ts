import * as tf from '@tensorflow/tfjs';
import { randn, rng } from './random.ts';

/** Rows of the toy regression: one batch of `ROWS` is one optimizer step per epoch. */
export const ROWS = 64;

/** x [64, 4] seeded, y = x·w + 0.3 [64, 1]: a dense regression any optimizer should fit. */
export function regressionData(): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const x = tf.tensor2d(Float32Array.from(randn(rng(42), ROWS * 4)), [ROWS, 4]);
  const y = tf.tidy(() => tf.add(tf.matMul(x, tf.tensor2d([[0.5], [-1], [2], [0.25]])), 0.3) as tf.Tensor2D);
  return { x, y };
}

/** 4 → 8 (tanh) → 1 with seeded initialisers: two kernels (rank 2) and two biases (rank 1). */
export function regressionModel(): tf.Sequential {
  const m = tf.sequential();
  m.add(
    tf.layers.dense({
      units: 8,
      activation: 'tanh',
      inputShape: [4],
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    }),
  );
  m.add(tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
  return m;
}

/** `epochs` full-batch steps, no shuffling: deterministic on one backend. */
export async function fitSteps(m: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, epochs: number): Promise<void> {
  await m.fit(x, y, { epochs, batchSize: ROWS, shuffle: false, verbose: 0 });
}

/** Mean squared error of `m` on (x, y). */
export function evalLoss(m: tf.LayersModel, x: tf.Tensor, y: tf.Tensor): number {
  return tf.tidy(() => (m.evaluate(x, y, { batchSize: ROWS }) as tf.Scalar).dataSync()[0]!);
}

/** The bit patterns of a tensor's values (float32 as uint32, int32 as is): equal arrays mean bit-identical. */
export function bits(t: tf.Tensor): number[] {
  const values = t.dataSync();
  return t.dtype === 'float32'
    ? Array.from(new Uint32Array(Float32Array.from(values).buffer))
    : Array.from(values);
}

/** What a training state is, bit for bit: model weights, then the optimizer's named weights. */
export interface StateBits {
  weights: number[][];
  optimizer: { name: string; dtype: string; bits: number[] }[];
}

export async function stateBits(m: tf.LayersModel): Promise<StateBits> {
  const optimizer = (await m.optimizer.getWeights()).map((w) => ({
    name: w.name,
    dtype: w.tensor.dtype,
    bits: bits(w.tensor),
  }));
  return { weights: m.getWeights().map(bits), optimizer };
}
