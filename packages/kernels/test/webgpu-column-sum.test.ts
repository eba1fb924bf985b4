import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  registerWebGPUColumnSum,
  selectBackend,
  shutdownWebGPU,
  unregisterWebGPUColumnSum,
  webgpuColumnSumCount,
} from '../src/index.ts';

// The column-sum `Sum` (leading axes, no transpose) against a float64 sum and tfjs's own webgpu `Sum`, on lavapipe.
const skip = process.env.KSTAR_SKIP_WEBGPU === '1';
if (skip) console.warn('KSTAR_SKIP_WEBGPU=1: the WebGPU column sum was NOT tested');

/** Float64 sum of `x` [rows, cols] over its rows. */
function columnSums64(x: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c]! += x[r * cols + c]!;
  return out;
}

describe.skipIf(skip)('WebGPU column sum', () => {
  beforeAll(async () => {
    await selectBackend('webgpu');
    registerWebGPUColumnSum();
  });
  afterAll(() => {
    shutdownWebGPU();
  });

  it('sums leading axes like float64 and tfjs (one to three passes, one row, keepDims); other axes go to tfjs', async () => {
    const tensors = tf.memory().numTensors;
    const cases: Array<{ shape: number[]; axis: number[]; keepDims: boolean }> = [
      { shape: [1100, 3], axis: [0], keepDims: false }, // chunks of 32 rows: 35, 2, 1 (three passes)
      { shape: [3, 37, 5], axis: [1, 0], keepDims: true }, // 111 rows: two passes
      { shape: [20, 9], axis: [0], keepDims: false }, // one chunk: one pass
      { shape: [1, 6], axis: [0], keepDims: true }, // one row: a copy
    ];
    for (const c of cases) {
      const rows = c.shape.slice(0, c.axis.length).reduce((a, b) => a * b, 1);
      const cols = c.shape.slice(c.axis.length).reduce((a, b) => a * b, 1);
      const values = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 5)));
      const x = tf.tensor(values, c.shape);
      const before = webgpuColumnSumCount();
      const mine = tf.sum(x, c.axis, c.keepDims);
      expect(webgpuColumnSumCount(), JSON.stringify(c)).toBe(before + 1);
      unregisterWebGPUColumnSum();
      const theirs = tf.sum(x, c.axis, c.keepDims);
      registerWebGPUColumnSum();
      expect(mine.shape).toEqual(theirs.shape);
      const exact = columnSums64(values, rows, cols);
      const [a, b] = [await mine.data(), await theirs.data()];
      for (let i = 0; i < cols; i++) {
        expect(Math.abs(a[i]! - exact[i]!), `${c.shape} column ${i}`).toBeLessThan(1e-4);
        expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-4);
      }
      tf.dispose([x, mine, theirs]);
    }
    const y = tf.ones([4, 6]);
    const before = webgpuColumnSumCount();
    const inner = tf.sum(y, 1); // innermost axis: tfjs's kernel
    expect(webgpuColumnSumCount()).toBe(before);
    expect(Array.from(await inner.data())).toEqual([6, 6, 6, 6]);
    tf.dispose([y, inner]);
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
