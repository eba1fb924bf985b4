import type * as tf from '@tensorflow/tfjs-core';
import type { CudaBackend } from './backend.ts';
import { type Param, ptr } from './params.ts';

/** What every `cuda` kernel implementation receives and returns (tfjs's `KernelFunc`, narrowed to this backend). */
export type Info = tf.TensorInfo;
export type Ctx = { inputs: tf.NamedTensorInfoMap; backend: CudaBackend; attrs: tf.NamedAttrMap };
export type Impl = (ctx: Ctx) => Info | Info[];

/** The device pointer of a tensor as a kernel parameter; a missing (optional) input passes a null pointer. */
export const p = (b: CudaBackend, t: Info | undefined): Param => ptr(t == null ? 0 : b.pointer(t.dataId));

/** float64 values passed by value as one struct of doubles (the kernels' float64 constants). */
export const doubles = (values: readonly number[]): Param => ({
  kind: 'struct',
  value: new Uint8Array(Float64Array.from(values).buffer),
});
