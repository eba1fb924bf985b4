import * as tf from '@tensorflow/tfjs-core';
import { kernelOverride } from './kernel-override.ts';
import type { FusedBackend } from './row-program.ts';
import { flat, flatProgram } from './wgsl.ts';

/**
 * `tf.sum` over the leading axes of a float32 tensor on WebGPU (the bias gradient of `tf.fused.matMul`: dy [N, D]
 * summed over N) as column sums read in place. tfjs-backend-webgpu's `Sum` reduces only the innermost axes, so for
 * these it first materialises a transpose of the whole input. Each pass sums COLUMN_SUM_CHUNK rows per column
 * (neighbouring threads read neighbouring columns), until one row is left. Every other `Sum` goes to tfjs's kernel.
 */
export const COLUMN_SUM_CHUNK = 32;

let columnSums = 0;

/** How many `Sum`s the column-sum path took (tests and benchmarks check it ran). */
export function webgpuColumnSumCount(): number {
  return columnSums;
}

/** The number of leading axes `axes` reduces when they are exactly 0..k−1 with k < rank, else 0. */
export function leadingAxes(axes: number[], rank: number): number {
  const sorted = [...axes].sort((a, b) => a - b);
  const leading = sorted.every((a, i) => a === i);
  return leading && sorted.length < rank ? sorted.length : 0;
}

/** One pass: [rows, cols] → partial sums of each COLUMN_SUM_CHUNK rows [ceil(rows / chunk), cols]. */
function columnSumPass(backend: FusedBackend, x: tf.TensorInfo, rows: number, cols: number): tf.TensorInfo {
  return backend.runWebGPUProgram(
    flatProgram({
      key: 'column_sum_partial',
      size: Math.ceil(rows / COLUMN_SUM_CHUNK) * cols,
      inputs: ['X'],
      uniforms: 'cols : i32, rows : i32,',
      body: `let c = index % uniforms.cols; let r0 = (index / uniforms.cols) * ${COLUMN_SUM_CHUNK};
        let r1 = min(r0 + ${COLUMN_SUM_CHUNK}, uniforms.rows);
        var acc = 0.0;
        for (var r = r0; r < r1; r++) { acc += X[r * uniforms.cols + c]; }
        result[index] = acc;`,
    }),
    [flat(x)],
    'float32',
    [
      { type: 'int32', data: [cols] },
      { type: 'int32', data: [rows] },
    ],
  );
}

/**
 * Passes of short chunks until one row is left (8,192 rows: 256, 8, 1): every pass has many threads, each a short
 * chain of dependent loads (one thread summing all partials of a column was latency-bound).
 */
function columnSum(backend: FusedBackend, x: tf.TensorInfo, rows: number, cols: number): tf.TensorInfo {
  let cur = x;
  for (let n = rows; n > 1; n = Math.ceil(n / COLUMN_SUM_CHUNK)) {
    const next = columnSumPass(backend, cur, n, cols); // [ceil(n / chunk), cols]
    if (cur !== x) backend.disposeData(cur.dataId);
    cur = next;
  }
  return cur === x ? columnSumPass(backend, x, 1, cols) : cur; // one row: a copy
}

function kstarSum(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const k = x.dtype === 'float32' ? leadingAxes(tf.util.parseAxisParam(axis, x.shape), rank) : 0;
    if (k === 0 || tf.util.sizeFromShape(x.shape) === 0) return original(args);
    columnSums++;
    const rows = tf.util.sizeFromShape(x.shape.slice(0, k));
    const out = columnSum(args.backend as FusedBackend, x, rows, tf.util.sizeFromShape(x.shape.slice(k)));
    const shape = keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k);
    return { dataId: out.dataId, shape, dtype: 'float32' };
  };
}

const override = kernelOverride('webgpuColumnSum', 'webgpu', ['Sum'], kstarSum);

/**
 * Installs the column sum over the webgpu backend's `Sum` (idempotent; a no-op before the backend registered it, or
 * when `KSTAR_WEBGPU_SUM=tfjs`, which keeps tfjs's transpose-then-reduce for comparisons).
 */
export function registerWebGPUColumnSum(): void {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  if (env?.KSTAR_WEBGPU_SUM === 'tfjs') return;
  override.install();
}

/** Puts tfjs's own webgpu `Sum` back (parity tests compare both; `registerWebGPUColumnSum` reinstalls). */
export function unregisterWebGPUColumnSum(): void {
  override.restore();
}
