import * as tf from '@tensorflow/tfjs-core';
import { toKernelFunc } from './define-kernel.ts';
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

interface WasmInternals {
  dataIdMap: { get(dataId: tf.DataId): { id: number; memoryOffset: number; shape: number[] } | undefined };
  wasm: {
    tfjs: { disposeData(id: number): void; registerTensor(id: number, size: number, offset: number): void };
  };
}

/**
 * Call after writing a tensor's heap memory in place on wasm. The wasm backend caches XNNPACK operators — with the
 * weight matrix packed inside — per tensor id and drops them only when the tensor is disposed, so a matMul that
 * reads a weight updated in place would keep multiplying by the old, packed copy (a GPT trained on wasm with in-place AdamW
 * kept multiplying by its step-1 weights). Unregistering and re-registering the same id with
 * the same memory drops those operators; the data stays where it is.
 */
export function invalidateWasmCaches(backend: unknown, t: tf.TensorInfo): void {
  const b = backend as WasmInternals;
  const d = b.dataIdMap.get(t.dataId);
  if (!d) return;
  b.wasm.tfjs.disposeData(d.id);
  b.wasm.tfjs.registerTensor(d.id, tf.util.sizeFromShape(d.shape), d.memoryOffset);
}

/**
 * `UnsortedSegmentSum` (the gradient of `GatherV2`, hence of every embedding lookup):
 * x: [n, ...inner] (or segmentIds.shape ++ inner), segmentIds: int32 with n elements, attr numSegments
 * → out: [numSegments, ...inner], out[s] = Σ_{i: ids[i] = s} x[i]; ids outside [0, numSegments) are dropped
 * (TensorFlow semantics).
 */
export const unsortedSegmentSumWasm: tf.KernelFunc = toKernelFunc<
  { x: tf.TensorInfo; segmentIds: tf.TensorInfo },
  { numSegments: number },
  WasmBackendLike
>(({ inputs: { x, segmentIds }, backend: b, attrs: { numSegments } }) => {
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
});

/**
 * `OneHot`. tfjs-backend-wasm 4.22's own kernel writes the on/off values as int32 whatever the requested dtype, so
 * `tf.oneHot(ids, depth, 1, 0, 'float32')` yields 1.4e-45 (the bits of int 1) where 1 belongs: a cross-entropy
 * written with a float one-hot silently picks ≈0 of every target logit. This kernel writes values of the output's
 * dtype. indices: int32 [...], attrs depth, onValue, offValue, dtype → [..., depth]; indices outside [0, depth)
 * give a row of offValue (TensorFlow semantics).
 */
export const oneHotWasm: tf.KernelFunc = toKernelFunc<
  { indices: tf.TensorInfo },
  { depth: number; onValue: number; offValue: number; dtype: tf.DataType },
  WasmBackendLike
>(({ inputs: { indices }, backend: b, attrs: { depth, onValue, offValue, dtype } }) => {
  const out = b.makeOutput([...indices.shape, depth], dtype);
  const n = tf.util.sizeFromShape(indices.shape);
  if (n * depth === 0) return out;
  const outV = b.typedArrayFromHeap(out);
  const idV = b.typedArrayFromHeap(indices);
  outV.fill(offValue);
  for (let i = 0; i < n; i++) {
    const k = idV[i]!;
    if (k >= 0 && k < depth) outV[i * depth + k] = onValue;
  }
  return out;
});

/**
 * `Sign`. tfjs-backend-wasm 4.22's own kernel returns 0 for |x| below about 1e-6 (e.g. sign(−9.2e-7) = 0), so
 * Lion's portable update skipped every weight whose momentum-gradient mix was that small. This kernel is
 * `Math.sign`: −1, 0 or 1 (±0 → ±0, NaN → NaN, as torch's `sign`).
 */
export const signWasm: tf.KernelFunc = toKernelFunc<{ x: tf.TensorInfo }, unknown, WasmBackendLike>(
  ({ inputs: { x }, backend: b }) => {
    const out = b.makeOutput([...x.shape], x.dtype);
    const n = tf.util.sizeFromShape(x.shape);
    if (n === 0) return out;
    const outV = b.typedArrayFromHeap(out);
    const xV = b.typedArrayFromHeap(x);
    for (let i = 0; i < n; i++) outV[i] = Math.sign(xV[i]!);
    return out;
  },
);

/** Registers the wasm kernels above for backend `wasm` (idempotent; leaves a kernel tfjs itself provides). */
export function registerWasmKernels(): void {
  const kernels: Array<[string, tf.KernelFunc]> = [['UnsortedSegmentSum', unsortedSegmentSumWasm]];
  for (const [kernelName, kernelFunc] of kernels) {
    if (tf.getKernel(kernelName, 'wasm') != null) continue;
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  }
  // Replaces tfjs's OneHot for wasm (wrong values for non-int32 dtypes), once the wasm backend has registered its own.
  const oneHot = tf.getKernel('OneHot', 'wasm');
  if (oneHot != null && oneHot.kernelFunc !== oneHotWasm) {
    tf.unregisterKernel('OneHot', 'wasm');
    tf.registerKernel({ kernelName: 'OneHot', backendName: 'wasm', kernelFunc: oneHotWasm });
  }
  // Replaces tfjs's Sign for wasm (small magnitudes read as 0).
  const sign = tf.getKernel('Sign', 'wasm');
  if (sign != null && sign.kernelFunc !== signWasm) {
    tf.unregisterKernel('Sign', 'wasm');
    tf.registerKernel({ kernelName: 'Sign', backendName: 'wasm', kernelFunc: signWasm });
  }
  registerWasmMatMulFix();
}
