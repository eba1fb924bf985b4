import type { GradAccumulator } from '@kstar/core';
import { ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import type { CpuKernel, WasmKernel, WebGPUKernel } from './define-kernel.ts';
import { cpuFloats, defineKernel } from './define-kernel.ts';
import { inPlaceOutput } from './in-place.ts';
import { invalidateWasmCaches } from './wasm-kernels.ts';
import { flat, flatProgram } from './wgsl.ts';

/**
 * `acc += g` in place. The engine uses it to sum a tied parameter's partial gradients (the LM head's and the
 * embedding's parts of `wte`) without allocating the sum: with `tf.add` the old sum, the new part and the new sum
 * are alive at once (3× the embedding); in place, 2×.
 */
interface AddArgs {
  acc: tf.Tensor;
  g: tf.Tensor;
}
type Inputs = { acc: tf.TensorInfo; g: tf.TensorInfo };

type NoAttrs = Record<string, never>;

const addCpu: CpuKernel<Inputs, NoAttrs> = ({ inputs: { acc, g }, backend: b }) => {
  const a = cpuFloats(b, acc);
  const x = cpuFloats(b, g);
  for (let i = 0; i < a.length; i++) a[i] = a[i]! + x[i]!;
  return inPlaceOutput(b, acc);
};

const addWasm: WasmKernel<Inputs, NoAttrs> = ({ inputs: { acc, g }, backend: b }) => {
  // No allocation in this kernel: the heap views stay valid.
  const a = b.typedArrayFromHeap(acc) as Float32Array;
  const x = b.typedArrayFromHeap(g) as Float32Array;
  for (let i = 0; i < a.length; i++) a[i] = a[i]! + x[i]!;
  invalidateWasmCaches(b, acc);
  return inPlaceOutput(b, acc);
};

const addWebGPU: WebGPUKernel<Inputs, NoAttrs> = ({ inputs: { acc, g }, backend: b }) => {
  const size = tf.util.sizeFromShape(acc.shape);
  b.runWebGPUProgram(
    flatProgram({
      key: 'add_in_place',
      size,
      inputs: ['G'],
      body: 'result[index] = result[index] + G[index];',
    }),
    [flat(g)],
    'float32',
    [],
    flat(acc),
  );
  b.tensorMap.get(acc.dataId).values = null; // a cached CPU copy is stale now
  return inPlaceOutput(b, acc);
};

export const addInPlaceKernel = defineKernel<AddArgs, tf.Tensor, Inputs, NoAttrs>({
  name: 'KstarAddInPlace',
  backends: { cpu: addCpu, wasm: addWasm, webgpu: addWebGPU },
  invoke: ({ acc, g }) => ({ inputs: { acc, g } }),
  finish: (outputs, { acc }) => {
    tf.dispose(outputs); // the alias; `acc` itself holds the sum
    return acc;
  },
  fallback: ({ acc, g }) => tf.add(acc, g),
  // In place only when nobody else sees `acc`'s buffer and the two buffers differ.
  canRunNative: ({ acc, g }, backend) => acc.dataId !== g.dataId && backend.refCount(acc.dataId) === 1,
});

/**
 * Returns `acc + g`: `acc` itself, updated in place, when the backend has the kernel and `acc`'s buffer is not
 * shared; otherwise a new tensor (tfjs ops). Inputs are never disposed.
 */
export function addInPlace(
  acc: tf.Tensor,
  g: tf.Tensor,
  options?: { impl?: 'auto' | 'fallback' },
): tf.Tensor {
  if (!tf.util.arraysEqual(acc.shape, g.shape) || acc.dtype !== 'float32' || g.dtype !== 'float32') {
    throw new ShapeError(
      `addInPlace: acc is ${acc.dtype}[${acc.shape}] and g is ${g.dtype}[${g.shape}]: both must be float32 of one shape`,
    );
  }
  return addInPlaceKernel.run({ acc, g }, options);
}

/** The engine's gradient accumulator for tied parameters, backed by `addInPlace`. */
export const inPlaceGradAccumulator: GradAccumulator = { inPlace: true, add: (acc, g) => addInPlace(acc, g) };
