import type * as tf from '@tensorflow/tfjs-core';
import { type CpuKernel, cpuFloats, type WasmKernel } from './define-kernel.ts';
import { inPlaceOutputs } from './in-place.ts';
import { invalidateWasmCaches } from './wasm-kernels.ts';

/** The float32 values of each input a kernel was given (optional inputs stay optional). */
export type InputArrays<I> = { [K in keyof I]: Float32Array };

/**
 * The cpu and wasm kernels of an in-place update written once as a loop over float32 arrays: `update` gets the
 * values of every input (cpu: the backend's own buffers; wasm: views of the heap) and writes those named in
 * `written` in place; the kernel's outputs are the written inputs, in that order. `update` must allocate nothing on
 * the wasm heap (a growing heap detaches the views).
 */
export function inPlaceArrayKernels<I extends { [name: string]: tf.TensorInfo | undefined }, A>(
  written: readonly (keyof I)[],
  update: (arrays: InputArrays<I>, attrs: A, inputs: I) => void,
): { cpu: CpuKernel<I, A>; wasm: WasmKernel<I, A> } {
  const arraysOf = (inputs: I, values: (t: tf.TensorInfo) => Float32Array): InputArrays<I> => {
    const arrays: Partial<Record<keyof I, Float32Array>> = {};
    for (const key of Object.keys(inputs) as (keyof I)[]) {
      const t = inputs[key];
      if (t != null) arrays[key] = values(t);
    }
    return arrays as InputArrays<I>;
  };
  const writtenOf = (inputs: I) => written.map((key) => inputs[key]);
  return {
    cpu: ({ inputs, backend: b, attrs }) => {
      update(
        arraysOf(inputs, (t) => cpuFloats(b, t)),
        attrs,
        inputs,
      );
      return inPlaceOutputs(b, writtenOf(inputs));
    },
    wasm: ({ inputs, backend: b, attrs }) => {
      update(
        arraysOf(inputs, (t) => b.typedArrayFromHeap(t) as Float32Array),
        attrs,
        inputs,
      );
      // The wasm backend caches packed weights per tensor id: drop them, or matMuls keep the old weights.
      for (const t of writtenOf(inputs)) if (t != null) invalidateWasmCaches(b, t);
      return inPlaceOutputs(b, writtenOf(inputs));
    },
  };
}
