import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUKernelBackend } from './define-kernel.ts';
import {
  factoredDims,
  factoredMomentArrays,
  factoredMomentOps,
  factoredMomentWebGPU,
  factoredRsqrtOps,
  type WgslGradient,
} from './factored-moment.ts';
import { updateScaleWebGPU, type WgslUpdate } from './update-scale-webgpu.ts';
import { flat, flatProgram } from './wgsl.ts';

/**
 * The RMS-clipped second-moment update that Adafactor and AdaLomo share, on top of the factored moment
 * (`factored-moment.ts`): a parameter of rank ≥ 2 keeps R and C (factored), a vector keeps V = β·V + (1−β)·(g'² + eps1),
 *
 *   U = g' · rsqrt(R[b,i] / mean_i R[b,i]) · rsqrt(C[b,j])      (vector: U = g' · rsqrt(V))
 *   k = alpha / max(1, RMS(U) / clip)
 *
 * with g' the mapped gradient (AdaLomo: clip and scale; Adafactor: g). Each optimizer writes its own final pass
 * from U and k. Native paths never store U: it is recomputed per element (cpu/wasm: `ForEachU`; webgpu: the WGSL
 * statements of `WgslUpdate.expr`).
 */

/** The second-moment state of one parameter: R and C (factored) or V (vector). */
export interface SecondMoment<T> {
  readonly row?: T;
  readonly col?: T;
  readonly v?: T;
}

/** The second moment under HF's state names, as the optimizers' states keep it. */
export interface HfSecondMoment<T> {
  readonly exp_avg_sq_row?: T;
  readonly exp_avg_sq_col?: T;
  readonly exp_avg_sq?: T;
}

/** The present parts of a state's second moment under the kernel's input names (`row`, `col`, `v`). */
export function secondMomentOf<T>(state: HfSecondMoment<T>): SecondMoment<T> {
  const out: { row?: T; col?: T; v?: T } = {};
  if (state.exp_avg_sq_row != null) out.row = state.exp_avg_sq_row;
  if (state.exp_avg_sq_col != null) out.col = state.exp_avg_sq_col;
  if (state.exp_avg_sq != null) out.v = state.exp_avg_sq;
  return out;
}

/** Calls `fn(i, U[i])` for every element in index order; U is recomputed from g and the state, never stored. */
export type ForEachU = (fn: (i: number, u: number) => void) => void;

/**
 * cpu/wasm: updates the second moment `s` in place from the gradient `g` (float64 arithmetic, float32 storage) and
 * returns the walk over U. `gradAt` maps each gradient element first (the identity when absent).
 */
export function secondMomentArrays(
  g: Float32Array,
  s: SecondMoment<Float32Array>,
  shape: readonly number[],
  beta: number,
  eps1: number,
  gradAt?: (x: number) => number,
): ForEachU {
  const at = (x: number): number => (gradAt == null ? x : gradAt(x));
  if (s.row != null && s.col != null) {
    const { B, m, n } = factoredDims(shape);
    const f = factoredMomentArrays(g, s.row, s.col, { B, m, n }, beta, eps1, gradAt);
    return (fn) => {
      for (let r = 0; r < B * m; r++) {
        const cb = Math.floor(r / m) * n;
        const base = r * n;
        for (let j = 0; j < n; j++) fn(base + j, at(g[base + j]!) * f.row[r]! * f.col[cb + j]!);
      }
    };
  }
  const v = s.v!;
  const omb = 1 - beta;
  for (let i = 0; i < g.length; i++) {
    const gv = at(g[i]!);
    v[i] = beta * v[i]! + omb * (gv * gv + eps1);
  }
  return (fn) => {
    for (let i = 0; i < g.length; i++) fn(i, at(g[i]!) / Math.sqrt(v[i]!));
  };
}

/** cpu/wasm: k = alpha / max(1, RMS(U) / clip) over the `N` elements of U. */
export function clippedScale(forEachU: ForEachU, N: number, alpha: number, clip: number): number {
  let sumU2 = 0;
  forEachU((_, u) => {
    sumU2 += u * u;
  });
  return alpha / Math.max(1, Math.sqrt(sumU2 / N) / clip);
}

/** tfjs ops: RMS of a whole tensor. */
export const rmsOps = (x: tf.Tensor): tf.Tensor => tf.sqrt(tf.mean(tf.square(x)));

/** tfjs ops: the second moment of the (mapped) gradient `g` through `assign`, and U (a new tensor; not clipped). */
export function secondMomentOps(
  g: tf.Tensor,
  s: SecondMoment<tf.Variable>,
  beta: number,
  eps1: number,
): tf.Tensor {
  if (s.row != null && s.col != null) {
    const { row, col } = s;
    const u = tf.add(tf.square(g), eps1);
    factoredMomentOps(row, col, u, beta);
    u.dispose();
    return tf.tidy(() => tf.mul(factoredRsqrtOps(row, col), g));
  }
  const v = s.v!;
  v.assign(tf.tidy(() => tf.add(tf.mul(v, beta), tf.mul(tf.add(tf.square(g), eps1), 1 - beta))));
  return tf.mul(tf.rsqrt(v), g);
}

type Uniform = { type: 'float32' | 'int32'; data: number[] };
const f32 = (x: number): Uniform => ({ type: 'float32', data: [x] });
const i32 = (x: number): Uniform => ({ type: 'int32', data: [x] });

const PLAIN: WgslGradient = { key: '', at: (e) => `G[${e}]`, uniforms: '', values: [] };

/** What a webgpu kernel's final pass builds on: how to recompute U, the scalars [alpha, k], and what to free. */
export interface SecondMomentWebGPU {
  /** `f` (factored) or `v` (vector): part of the final pass's shader key. */
  readonly kind: 'f' | 'v';
  readonly update: WgslUpdate;
  /** [alpha, k] as a [2] tensor (in `temps`). */
  readonly scalars: tf.TensorInfo;
  /** The small temporaries to free after the final pass. */
  readonly temps: readonly tf.TensorInfo[];
}

/**
 * webgpu: the second moment in place (factored: R, C and the row means; vector: V), then the scalars
 * [alpha, k] with alpha = rho · (scaleByParam ? max(eps2, RMS(p)) : 1). `key` prefixes the shader keys.
 */
export function secondMomentWebGPU(
  b: WebGPUKernelBackend,
  x: { param: tf.TensorInfo; grad: tf.TensorInfo } & SecondMoment<tf.TensorInfo>,
  c: {
    key: string;
    beta: number;
    eps1: number;
    rho: number;
    eps2: number;
    clip: number;
    scaleByParam: boolean;
  },
  gradient: WgslGradient = PLAIN,
): SecondMomentWebGPU {
  const temps: tf.TensorInfo[] = [];
  let update: WgslUpdate;
  const factored = x.row != null && x.col != null;
  if (factored) {
    const dims = factoredDims(x.param.shape);
    const rowMean = factoredMomentWebGPU(
      b,
      { grad: x.grad, row: x.row!, col: x.col! },
      dims,
      c.beta,
      c.eps1,
      gradient,
    );
    temps.push(rowMean);
    update = {
      key: `${c.key}_f`,
      inputs: [x.grad, x.row!, x.col!, rowMean],
      names: ['G', 'Rw', 'Cl', 'Rm'],
      expr: `let row = idx / uniforms.nCols; let col = idx - row * uniforms.nCols; let bt = row / uniforms.nRows;
          let u = ${gradient.at('idx')} * inverseSqrt(Rw[row] / Rm[bt]) * inverseSqrt(Cl[bt * uniforms.nCols + col]);`,
      uniforms: `nRows : i32, nCols : i32, ${gradient.uniforms}`,
      values: [i32(dims.m), i32(dims.n), ...gradient.values],
    };
  } else {
    b.runWebGPUProgram(
      flatProgram({
        key: `${c.key}_v`,
        size: tf.util.sizeFromShape(x.param.shape),
        inputs: ['G'],
        uniforms: `${gradient.uniforms} eps1 : f32, b2t : f32, omb2t : f32,`,
        body: `let g = ${gradient.at('index')};
          result[index] = uniforms.b2t * result[index] + uniforms.omb2t * (g * g + uniforms.eps1);`,
      }),
      [flat(x.grad)],
      'float32',
      [...gradient.values, f32(c.eps1), f32(c.beta), f32(1 - c.beta)],
      flat(x.v!),
    );
    update = {
      key: `${c.key}_v`,
      inputs: [x.grad, x.v!],
      names: ['G', 'V'],
      expr: `let u = ${gradient.at('idx')} * inverseSqrt(V[idx]);`,
      uniforms: gradient.uniforms,
      values: [...gradient.values],
    };
  }
  const scalars = updateScaleWebGPU(b, x.param, update, c);
  temps.push(scalars);
  return { kind: factored ? 'f' : 'v', update, scalars, temps };
}
