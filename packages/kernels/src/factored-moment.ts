import * as tf from '@tensorflow/tfjs-core';
import { flat, flatProgram, type WebGPUBackendLike } from './wgsl.ts';

/**
 * The factored second moment of Adafactor (Shazeer & Stern 2018), shared by Adafactor, AdaLomo and CAME. A
 * parameter [...batch(B), m, n] keeps the row and column means of u = g² + eps1 as β-EMAs
 *
 *   R[b,i] ← β·R[b,i] + (1−β)·mean_j u[b,i,j]      C[b,j] ← β·C[b,j] + (1−β)·mean_i u[b,i,j]
 *
 * and divides the gradient by √(R·C / mean R), i.e. multiplies it by rsqrt(R[b,i] / mean_i R[b,i]) (the row
 * factor) and rsqrt(C[b,j]) (the column factor). Here: the cpu/wasm loops (float64 arithmetic, float32 storage,
 * in place), the tfjs ops (fallbacks) and the WGSL dispatches (webgpu). R and C are stored in the state's shapes
 * [...batch, m] and [...batch, n]; the factors are read from the stored (float32) values, as every later read sees
 * them.
 */

/** [B, m, n] of a factored shape (leading dims folded into B). */
export interface FactoredDims {
  readonly B: number;
  readonly m: number;
  readonly n: number;
}

export function factoredDims(shape: readonly number[]): FactoredDims {
  const n = shape[shape.length - 1]!;
  const m = shape[shape.length - 2]!;
  let B = 1;
  for (let i = 0; i < shape.length - 2; i++) B *= shape[i]!;
  return { B, m, n };
}

/** The factors of one step: row [B·m] = rsqrt(R / mean R), col [B·n] = rsqrt(C), in float64. */
export interface FactoredFactors {
  readonly row: Float64Array;
  readonly col: Float64Array;
}

/** rsqrt(x / mean of each batch's `rows` entries) into `out` ([B·rows]). */
export function rowRsqrtFactors(x: Float32Array, B: number, rows: number, out: Float64Array): void {
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let i = 0; i < rows; i++) s += x[b * rows + i]!;
    const mean = s / rows;
    for (let i = 0; i < rows; i++) out[b * rows + i] = 1 / Math.sqrt(x[b * rows + i]! / mean);
  }
}

/** rsqrt(x) into `out`. */
export function colRsqrtFactors(x: Float32Array, out: Float64Array): void {
  for (let c = 0; c < x.length; c++) out[c] = 1 / Math.sqrt(x[c]!);
}

/**
 * cpu/wasm: updates R (`row`) and C (`col`) in place from the gradient `g` (row-major [B, m, n]) and returns the
 * factors. `gradAt` maps each gradient element first (AdaLomo: clip by value, global-norm scale). Scratch: B·n
 * float64 for the column sums, plus the factors.
 */
export function factoredMomentArrays(
  g: Float32Array,
  row: Float32Array,
  col: Float32Array,
  { B, m, n }: FactoredDims,
  beta: number,
  eps1: number,
  gradAt?: (x: number) => number,
): FactoredFactors {
  const omb = 1 - beta;
  const colAcc = new Float64Array(B * n);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < m; i++) {
      const r = b * m + i;
      const base = r * n;
      let s = 0;
      for (let j = 0; j < n; j++) {
        const gv = gradAt == null ? g[base + j]! : gradAt(g[base + j]!);
        const u = gv * gv + eps1;
        s += u;
        colAcc[b * n + j]! += u;
      }
      row[r] = beta * row[r]! + omb * (s / n);
    }
  }
  for (let k = 0; k < B * n; k++) col[k] = beta * col[k]! + omb * (colAcc[k]! / m);
  const factors = { row: new Float64Array(B * m), col: new Float64Array(B * n) };
  rowRsqrtFactors(row, B, m, factors.row);
  colRsqrtFactors(col, factors.col);
  return factors;
}

/** tfjs ops: R and C of `u` = g² + eps1 ([..., m, n]) into their β-EMAs, through `assign`. */
export function factoredMomentOps(row: tf.Variable, col: tf.Variable, u: tf.Tensor, beta: number): void {
  row.assign(
    tf.tidy(() => tf.add(tf.mul(row, beta), tf.mul(tf.reshape(tf.mean(u, -1), row.shape), 1 - beta))),
  );
  col.assign(
    tf.tidy(() => tf.add(tf.mul(col, beta), tf.mul(tf.reshape(tf.mean(u, -2), col.shape), 1 - beta))),
  );
}

/** tfjs ops: rsqrt(R / mean R) [..., m, 1] · rsqrt(C) [..., 1, n] → [..., m, n]. */
export function factoredRsqrtOps(row: tf.Tensor, col: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const rFactor = tf.expandDims(tf.rsqrt(tf.div(row, tf.mean(row, -1, true))), -1);
    const cFactor = tf.expandDims(tf.rsqrt(col), -2);
    return tf.mul(rFactor, cFactor);
  });
}

type Uniform = { type: 'float32' | 'int32'; data: number[] };
const f32 = (x: number): Uniform => ({ type: 'float32', data: [x] });
const i32 = (x: number): Uniform => ({ type: 'int32', data: [x] });

/** How a kernel maps gradient elements on webgpu (AdaLomo's clip and scale); the identity when absent. */
export interface WgslGradient {
  /** Part of the shader keys: one per expression. */
  readonly key: string;
  /** WGSL for the mapped element `e` of the binding `G`. */
  readonly at: (e: string) => string;
  /** Its uniforms (`gclip : f32, …`) and their values, appended to the program's own. */
  readonly uniforms: string;
  readonly values: readonly Uniform[];
}

const PLAIN: WgslGradient = { key: '', at: (e) => `G[${e}]`, uniforms: '', values: [] };

/** webgpu: the mean of each batch's `rows` entries of a row statistic → a new [B] tensor (the caller frees it). */
export function batchRowMeanWebGPU(
  backend: WebGPUBackendLike,
  rowStat: tf.TensorInfo,
  B: number,
  rows: number,
): tf.TensorInfo {
  const program = flatProgram({
    key: 'factored_rowmean',
    size: B,
    inputs: ['X'],
    uniforms: 'nRows : i32,',
    body: `var s = 0.0;
          for (var i = 0; i < uniforms.nRows; i++) { s = s + X[index * uniforms.nRows + i]; }
          result[index] = s / f32(uniforms.nRows);`,
  });
  return backend.runWebGPUProgram(program, [flat(rowStat)], 'float32', [i32(rows)]);
}

/**
 * webgpu: R (one thread per row) and C (one per column) in place, each dispatch writing only its own `result`
 * binding, then the row means [B] for the row factor (returned: the caller frees it). WGSL of the factors at row
 * r = b·m + i, column j: `inverseSqrt(R[r] / Rm[b]) * inverseSqrt(C[b·n + j])`.
 */
export function factoredMomentWebGPU(
  backend: WebGPUBackendLike,
  x: { grad: tf.TensorInfo; row: tf.TensorInfo; col: tf.TensorInfo },
  { B, m, n }: FactoredDims,
  beta: number,
  eps1: number,
  gradient: WgslGradient = PLAIN,
): tf.TensorInfo {
  const ema = [f32(eps1), f32(beta), f32(1 - beta), ...gradient.values];
  const emaUniforms = `eps1 : f32, beta : f32, omb : f32, ${gradient.uniforms}`;
  const run = (
    key: string,
    size: number,
    uniforms: string,
    body: string,
    values: Uniform[],
    out: tf.TensorInfo,
  ) =>
    backend.runWebGPUProgram(
      flatProgram({ key: `factored_${key}${gradient.key}`, size, inputs: ['G'], uniforms, body }),
      [flat(x.grad)],
      'float32',
      values,
      flat(out),
    );
  run(
    'row',
    B * m,
    `nCols : i32, ${emaUniforms}`,
    `var s = 0.0;
          let base = index * uniforms.nCols;
          for (var j = 0; j < uniforms.nCols; j++) { let g = ${gradient.at('base + j')}; s = s + (g * g + uniforms.eps1); }
          result[index] = uniforms.beta * result[index] + uniforms.omb * (s / f32(uniforms.nCols));`,
    [i32(n), ...ema],
    x.row,
  );
  run(
    'col',
    B * n,
    `nRows : i32, nCols : i32, ${emaUniforms}`,
    `var s = 0.0;
          let bt = index / uniforms.nCols;
          let base = bt * uniforms.nRows * uniforms.nCols + (index - bt * uniforms.nCols);
          for (var i = 0; i < uniforms.nRows; i++) { let g = ${gradient.at('base + i * uniforms.nCols')}; s = s + (g * g + uniforms.eps1); }
          result[index] = uniforms.beta * result[index] + uniforms.omb * (s / f32(uniforms.nRows));`,
    [i32(m), i32(n), ...ema],
    x.col,
  );
  return batchRowMeanWebGPU(backend, x.row, B, m);
}
