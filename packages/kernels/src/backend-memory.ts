import * as tf from '@tensorflow/tfjs-core';
import { webgpuPoolStats } from './webgpu-pool.ts';

export interface BackendMemory {
  backend: string;
  /** webgpu: bytes in live tensors' GPU buffers (`tf.memory().numBytesInGPU`). */
  gpuBytesInUse?: number;
  /** webgpu: bytes the buffer pool holds (`numBytesAllocatedInGPU`); ≤ in-use high-water mark + the bound (webgpu-pool.ts). */
  gpuBytesAllocated?: number;
  /** webgpu: high-water marks of the two above since the backend started or `resetWebGPUPoolPeaks`. */
  peakGpuBytesInUse?: number;
  peakGpuBytesAllocated?: number;
  /** webgpu: the pool's slack above the in-use high-water mark (Infinity: tfjs's unbounded pool). */
  gpuPoolMaxFreeBytes?: number;
  /** wasm: size of the wasm heap (`HEAPU8.byteLength`), grow-only. */
  wasmHeapBytes?: number;
}

/** Physical memory meters of the active backend, where it has any (cpu and tensorflow have none). */
export function backendMemory(): BackendMemory {
  const backend = tf.getBackend();
  if (backend === 'webgpu') {
    const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number; numBytesAllocatedInGPU?: number };
    const pool = webgpuPoolStats(tf.backend());
    return {
      backend,
      gpuBytesInUse: m.numBytesInGPU,
      gpuBytesAllocated: m.numBytesAllocatedInGPU,
      ...(pool
        ? {
            peakGpuBytesInUse: pool.peakBytesInUse,
            peakGpuBytesAllocated: pool.peakBytesAllocated,
            gpuPoolMaxFreeBytes: pool.maxFreeBytes,
          }
        : {}),
    };
  }
  if (backend === 'wasm') {
    const b = tf.backend() as tf.KernelBackend & { wasm: { HEAPU8: Uint8Array } };
    return { backend, wasmHeapBytes: b.wasm.HEAPU8.byteLength };
  }
  return { backend };
}
