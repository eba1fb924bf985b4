import * as tf from '@tensorflow/tfjs-core';
import { registerWasmMatMulFix } from './wasm-matmul.ts';

/**
 * Built-in tfjs kernels the wasm backend (4.22) lacks but training needs. The shipped wasm binary only
 * exports its own C++ kernels, so these are JS loops over views of the wasm heap.
 *
 * Heap views detach when the heap grows (`ALLOW_MEMORY_GROWTH`), so every kernel allocates its outputs
 * (`makeOutput`) first and takes views last.
 */

/** The slice of tfjs-backend-wasm's `BackendWasm` these kernels use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  refCount(dataId: tf.DataId): number;
  incRef(dataId: tf.DataId): void;
}

/**
 * `UnsortedSegmentSum` (the gradient of `GatherV2`, hence of every embedding lookup):
 * x: [n, ...inner] (or segmentIds.shape ++ inner), segmentIds: int32 with n elements, attr numSegments
 * → out: [numSegments, ...inner], out[s] = Σ_{i: ids[i] = s} x[i]; ids outside [0, numSegments) are dropped
 * (TensorFlow semantics).
 */
export const unsortedSegmentSumWasm: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const { numSegments } = attrs as unknown as { numSegments: number };
  const b = backend as unknown as WasmBackendLike;
  const nIds = tf.util.sizeFromShape(segmentIds.shape);
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = tf.util.sizeFromShape(innerShape);
  const out = b.makeOutput([numSegments, ...innerShape], x.dtype);
  if (nIds * inner === 0 || numSegments * inner === 0) return out;
  // Views after the allocation (see above).
  const outV = b.typedArrayFromHeap(out);
  const xV = b.typedArrayFromHeap(x);
  const idV = b.typedArrayFromHeap(segmentIds);
  outV.fill(0);
  for (let i = 0; i < nIds; i++) {
    const s = idV[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) outV[dst + j] += xV[src + j];
  }
  return out;
};

/** Registers the wasm kernels above for backend `wasm` (idempotent; leaves a kernel tfjs itself provides). */
export function registerWasmKernels(): void {
  const kernels: Array<[string, tf.KernelFunc]> = [['UnsortedSegmentSum', unsortedSegmentSumWasm]];
  for (const [kernelName, kernelFunc] of kernels) {
    if (tf.getKernel(kernelName, 'wasm') != null) continue;
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  }
  registerWasmMatMulFix();
}
