import type { SliceWriter } from '@kstar/core';
import { opsSliceWriter, ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { type CpuKernel, defineKernel, type WasmKernel, type WebGPUKernel } from './define-kernel.ts';
import { invalidateWasmCaches } from './wasm-kernels.ts';
import { flat, flatProgram } from './wgsl.ts';

/**
 * `KstarWriteSlice`: target.flat[offset : offset + source.size] ← source, IN PLACE (float32 or int32). Gradient
 * partitioning (`partitionedUpdate` of @kstar/core) writes each updated row chunk back with it, so no weight-sized
 * buffer is ever made. The kernel's output is an EMPTY tensor, not an alias of the target: `tf.profile` counts every
 * tensor object's bytes, and an alias would count the whole weight again though nothing was allocated.
 * The fallback (tfjs ops, e.g. the `tensorflow` backend) rebuilds the target with `concat`: weight-sized.
 */
interface WriteArgs {
  target: tf.Variable;
  source: tf.Tensor;
  offset: number;
}
type Inputs = { target: tf.TensorInfo; source: tf.TensorInfo };

const emptyOf = (make: (shape: number[], dtype: tf.DataType) => tf.TensorInfo) => make([0], 'float32');

type Attrs = { offset: number };

const writeCpu: CpuKernel<Inputs, Attrs> = ({
  inputs: { target, source },
  backend: b,
  attrs: { offset },
}) => {
  const t = b.data.get(target.dataId).values;
  const s = b.data.get(source.dataId).values;
  // A cpu slice of contiguous rows may be a view of the target itself: then the rows are already there.
  if (!(s.buffer === t.buffer && s.byteOffset === t.byteOffset + 4 * offset)) t.set(s, offset);
  return emptyOf((shape, dtype) => b.makeTensorInfo(shape, dtype, new Float32Array(0)));
};

const writeWasm: WasmKernel<Inputs, Attrs> = ({
  inputs: { target, source },
  backend: b,
  attrs: { offset },
}) => {
  const out = emptyOf((shape, dtype) => b.makeOutput(shape, dtype)); // allocate first: views detach on heap growth
  const t = b.typedArrayFromHeap(target) as Float32Array | Int32Array;
  const s = b.typedArrayFromHeap(source) as Float32Array | Int32Array;
  t.set(s, offset);
  invalidateWasmCaches(b, target);
  return out;
};

const writeWebGPU: WebGPUKernel<Inputs, Attrs> = ({
  inputs: { target, source },
  backend: b,
  attrs: { offset },
}) => {
  const size = tf.util.sizeFromShape(source.shape);
  // `size` elements are dispatched; `result` is bound to the whole target buffer.
  const program = flatProgram({
    key: `write_slice_${target.dtype}`,
    size,
    inputs: ['S'],
    uniforms: 'offset : i32,',
    body: 'result[index + uniforms.offset] = S[index];',
  });
  b.runWebGPUProgram(program, [flat(source)], target.dtype, [{ type: 'int32', data: [offset] }], {
    ...flat(target),
  });
  b.tensorMap.get(target.dataId).values = null; // a cached CPU copy is stale now
  return emptyOf((shape, dtype) => b.makeTensorInfo(shape, dtype));
};

export const writeSliceKernel = defineKernel<WriteArgs, void, Inputs, Attrs>({
  name: 'KstarWriteSlice',
  backends: { cpu: writeCpu, wasm: writeWasm, webgpu: writeWebGPU },
  invoke: ({ target, source, offset }) => ({ inputs: { target, source }, attrs: { offset } }),
  finish: (outputs) => tf.dispose(outputs),
  fallback: ({ target, source, offset }) => opsSliceWriter.write(target, source, offset),
  // In place only when nobody else holds the target's buffer (a clone, a tape-saved tensor).
  canRunNative: ({ target, source }, backend) =>
    target.dataId !== source.dataId && backend.refCount(target.dataId) === 1,
});

/** Writes `source` into `target`'s flat elements [offset, offset + source.size), in place where the backend can. */
export function writeSlice(
  target: tf.Variable,
  source: tf.Tensor,
  offset: number,
  options?: { impl?: 'auto' | 'fallback' },
): void {
  if (
    source.dtype !== target.dtype ||
    (target.dtype !== 'float32' && target.dtype !== 'int32') ||
    !(Number.isInteger(offset) && offset >= 0 && offset + source.size <= target.size)
  ) {
    throw new ShapeError(
      `writeSlice: cannot write ${source.dtype}[${source.shape}] at element ${offset} of ${target.dtype}[${target.shape}] '${target.name}': dtypes must match (float32 or int32) and the slice must lie inside the target`,
    );
  }
  if (source.size === 0) return;
  writeSliceKernel.run({ target, source, offset }, options);
}

/** The `SliceWriter` gradient partitioning uses (`EngineOptions.updatePartition.writer`). */
export const sliceWriter: SliceWriter = {
  inPlace: () => (writeSliceKernel.nativeBackends as readonly string[]).includes(tf.getBackend()),
  write: (target, source, offset) => writeSlice(target, source, offset),
};
