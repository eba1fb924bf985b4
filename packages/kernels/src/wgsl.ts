import type * as tf from '@tensorflow/tfjs-core';

/**
 * Flat element-wise WebGPU programs. The object is what `WebGPUBackend.runWebGPUProgram` expects (the
 * `WebGPUProgram` interface of tfjs-backend-webgpu 4.22); we build it by hand because the package root does not
 * export `getMainHeaderString` or the program classes, and a static import would load (and, in Node, register)
 * the whole webgpu backend whenever `@kstar/kernels` is imported.
 *
 * Every tensor is seen as 1-D: the program binds `result` (binding 0, read_write) and one `var<storage, read>`
 * array per input name; the generated `uniforms.size` is the element count. `body` runs once per element
 * with `index : i32` already bounds-checked; read inputs as `A[index]`, read and write the output as
 * `result[index]` (the old value is there when the output is an existing buffer: in-place update).
 */
export interface FlatProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size: boolean;
  uniforms?: string;
  getUserCode(): string;
}

const WORKGROUP = 128;

export interface FlatProgramSpec {
  /** Cache key; must change whenever `body` or `uniforms` change (values belong in uniforms, not here). */
  key: string;
  /** Number of elements of the output (and of every input). */
  size: number;
  /** Input binding names, in the order of the `inputs` passed to `runWebGPUProgram`. */
  inputs: string[];
  /** Extra uniform fields, e.g. `'lr : f32, beta1 : f32,'`; values passed as `programDefinedUniform`. */
  uniforms?: string;
  /** WGSL statements run for each `index < uniforms.size`. */
  body: string;
}

export function flatProgram(spec: FlatProgramSpec): FlatProgram {
  const program: FlatProgram = {
    variableNames: spec.inputs,
    outputShape: [spec.size],
    shaderKey: `kstar_${spec.key}`,
    dispatchLayout: { x: [0] },
    // runWebGPUProgram re-shapes this when it exceeds maxComputeWorkgroupsPerDimension (65535 × 128 elements).
    dispatch: [Math.ceil(spec.size / WORKGROUP), 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    size: true,
    // Written by hand: the equivalent of tfjs's `${getMainHeaderString('index')}`.
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${spec.body}
        }
      }
    `,
  };
  if (spec.uniforms) program.uniforms = spec.uniforms;
  return program;
}

/** A 1-D view of a tensor for program bindings: the same buffer (`dataId`), flat shape. */
export function flat(t: tf.TensorInfo): tf.TensorInfo {
  let size = 1;
  for (const d of t.shape) size *= d;
  return { dataId: t.dataId, shape: [size], dtype: t.dtype };
}

/** The slice of `WebGPUBackend` K* kernels use. */
export interface WebGPUBackendLike {
  runWebGPUProgram(
    program: FlatProgram,
    inputs: tf.TensorInfo[],
    outputDtype: tf.DataType,
    programDefinedUniform?: Array<{ type: 'float32' | 'int32' | 'uint32'; data: number[] }>,
    output?: tf.TensorInfo,
  ): tf.TensorInfo;
  tensorMap: { get(dataId: tf.DataId): { values: unknown } };
  refCount(dataId: tf.DataId): number;
  incRef(dataId: tf.DataId): void;
}
