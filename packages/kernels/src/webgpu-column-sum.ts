import * as tf from '@tensorflow/tfjs-core';
import { kernelOverride } from './kernel-override.ts';
import type { FusedBackend } from './row-program.ts';
import { flat, flatProgram } from './wgsl.ts';

/**
 * `tf.sum` over the leading axes of a float32 tensor on WebGPU (the bias gradient of `tf.fused.matMul`: dy [N, D]
 * summed over N) as column sums read in place. tfjs-backend-webgpu's `Sum` reduces only the innermost axes, so for
 * these it first materialises a transpose of the whole input (the strict gpt2-124m step spent 4.7% of its GPU time
 * in that Transpose and Sum). Two passes: partial sums of COLUMN_SUM_CHUNK rows per column [C, D] (neighbouring
 * threads read neighbouring columns), then the C partials of each column. Every other `Sum` goes to tfjs's kernel.
 */
export const COLUMN_SUM_CHUNK = 64;

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

function columnSum(backend: FusedBackend, x: tf.TensorInfo, rows: number, cols: number): tf.TensorInfo {
  const chunks = Math.ceil(rows / COLUMN_SUM_CHUNK);
  const partial = backend.runWebGPUProgram(
    flatProgram({
      key: 'column_sum_partial',
      size: chunks * cols,
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
  ); // [C, D]
  if (chunks === 1) return partial;
  const out = backend.runWebGPUProgram(
    flatProgram({
      key: 'column_sum_total',
      size: cols,
      inputs: ['P'],
      uniforms: 'chunks : i32,',
      body: `var acc = 0.0;
        for (var c = 0; c < uniforms.chunks; c++) { acc += P[c * uniforms.size + index]; }
        result[index] = acc;`,
    }),
    [partial],
    'float32',
    [{ type: 'int32', data: [chunks] }],
  ); // [D]
  backend.disposeData(partial.dataId);
  return out;
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
