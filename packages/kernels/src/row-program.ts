import type * as tf from '@tensorflow/tfjs-core';
import type { FlatProgram, WebGPUBackendLike } from './wgsl.ts';

/**
 * Row-wise WebGPU programs: one workgroup of `ROW_WORKGROUP` threads per row of a [rows, cols] matrix, for the fused
 * kernels that reduce over the last axis (softmax, LayerNorm, cross-entropy). Same program object as `flatProgram`
 * (what `runWebGPUProgram` expects), built by hand for the same reason (see wgsl.ts).
 *
 * The body sees the WGSL constant `kWG` (threads per row, `rowWorkgroup(cols)`), `row : i32` (may be ≥ `uniforms.rows` when tfjs re-shapes a dispatch of more than 65,535
 * workgroups: guard writes with `valid`, read through `r`, the row clamped into range), `tid : i32` (0 ≤ tid <
 * `W`), `cols` (= `uniforms.cols`) and the block reductions `wgSum(v)` / `wgMax(v)`, which every thread of the
 * workgroup must call (they contain barriers: never call them under a condition on `row` or `tid`).
 */
export const ROW_WORKGROUP = 256;

/** Threads per row: a power of two ≥ cols, from 32 up to `ROW_WORKGROUP` (short rows waste no threads). */
export function rowWorkgroup(cols: number): number {
  let w = 32;
  while (w < cols && w < ROW_WORKGROUP) w *= 2;
  return w;
}

export interface RowProgramSpec {
  /** Cache key; must change whenever `body` or `uniforms` change. */
  key: string;
  rows: number;
  /** Row length (sets the workgroup size; the value itself is passed as the `cols` uniform). */
  cols: number;
  /** Elements of the output (a flat 1-D result). */
  outputSize: number;
  inputs: string[];
  /** Extra uniform fields after `rows : i32, cols : i32,`, e.g. `'scale : f32,'`. */
  uniforms?: string;
  body: string;
}

export function rowProgram(spec: RowProgramSpec): FlatProgram {
  const W = rowWorkgroup(spec.cols);
  return {
    variableNames: spec.inputs,
    outputShape: [spec.outputSize],
    shaderKey: `kstar_row_${spec.key}_${W}`,
    dispatchLayout: { x: [0] },
    dispatch: [spec.rows, 1, 1],
    workgroupSize: [W, 1, 1],
    size: false,
    uniforms: `rows : i32, cols : i32, ${spec.uniforms ?? ''}`,
    getUserCode: () => `
      const kWG : i32 = ${W};
      var<workgroup> kstarRed : array<f32, ${W}>;
      fn wgSum(v : f32) -> f32 {
        let t = localIndex;
        kstarRed[t] = v;
        workgroupBarrier();
        for (var s = ${W / 2}u; s > 0u; s = s >> 1u) {
          if (t < s) { kstarRed[t] = kstarRed[t] + kstarRed[t + s]; }
          workgroupBarrier();
        }
        let out = kstarRed[0];
        workgroupBarrier();
        return out;
      }
      fn wgMax(v : f32) -> f32 {
        let t = localIndex;
        kstarRed[t] = v;
        workgroupBarrier();
        for (var s = ${W / 2}u; s > 0u; s = s >> 1u) {
          if (t < s) { kstarRed[t] = max(kstarRed[t], kstarRed[t + s]); }
          workgroupBarrier();
        }
        let out = kstarRed[0];
        workgroupBarrier();
        return out;
      }
      fn main(index : i32) {
        let row = index / kWG;
        let tid = i32(localIndex);
        let cols = uniforms.cols;
        let valid = row < uniforms.rows;
        let r = min(row, uniforms.rows - 1);
        ${spec.body}
      }
    `,
  };
}

/** `rows` and `cols` as the first two uniforms, then `extra` float32 values. */
export function rowUniforms(
  rows: number,
  cols: number,
  ...extra: number[]
): Array<{ type: 'float32' | 'int32'; data: number[] }> {
  return [
    { type: 'int32', data: [rows] },
    { type: 'int32', data: [cols] },
    ...extra.map((d) => ({ type: 'float32' as const, data: [d] })),
  ];
}

/** The backend slice the fused kernels use besides `runWebGPUProgram`. */
export type FusedBackend = WebGPUBackendLike & { disposeData(dataId: tf.DataId, force?: boolean): boolean };

/** A kernel output with `shape` (the program's result is 1-D; the buffer is the same). */
export function shaped(t: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/** `f(t)`, then dispose `t`: chains tfjs ops so at most two temporaries of a chain are alive at once. */
export function chain(t: tf.Tensor, f: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  const r = f(t);
  t.dispose();
  return r;
}
