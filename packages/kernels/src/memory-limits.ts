import { totalmem } from 'node:os';

/** The wasm backend's heap cannot grow past this (wasm32: 4 GiB less one 64 KiB page; tfjs-backend-wasm's getHeapMax). */
export const WASM_HEAP_MAX_BYTES = 4_294_901_760;

/** How much memory a backend's tensors can use, and where that number comes from (for a message). */
export interface MemoryLimit {
  bytes: number;
  source: string;
}

/** The process's memory: the cgroup limit when there is one (containers), else the machine's RAM. */
export function processMemoryLimit(): MemoryLimit {
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  const ram = totalmem();
  // No cgroup limit reads as 0, undefined or about 2^64.
  if (constrained !== undefined && constrained > 0 && constrained < ram) {
    return { bytes: constrained, source: 'the process memory limit (cgroup)' };
  }
  return { bytes: ram, source: "the machine's memory" };
}

/**
 * The limit a step's tensors live under on `backend`: the wasm heap (and the process) for wasm, the process for cpu
 * and tensorflow. WebGPU exposes no total device memory (only per-buffer limits), so it has none here.
 */
export function backendMemoryLimit(backend: string): MemoryLimit | undefined {
  if (backend === 'webgpu') return undefined;
  const process = processMemoryLimit();
  if (backend === 'wasm' && WASM_HEAP_MAX_BYTES < process.bytes) {
    return { bytes: WASM_HEAP_MAX_BYTES, source: 'the wasm heap limit (4 GiB)' };
  }
  return process;
}

/**
 * WebGPU's per-buffer limit on a device: the smaller of `maxStorageBufferBindingSize` (a kernel cannot bind a larger
 * tensor) and `maxBufferSize` (none can be allocated). Undefined without a device (or off WebGPU).
 */
export function webgpuBufferLimit(
  device: unknown,
): (MemoryLimit & { binding: number; buffer: number }) | undefined {
  const limits = (
    device as { limits?: { maxStorageBufferBindingSize?: number; maxBufferSize?: number } } | null
  )?.limits;
  const binding = limits?.maxStorageBufferBindingSize;
  const buffer = limits?.maxBufferSize;
  if (binding === undefined || buffer === undefined) return undefined;
  return {
    bytes: Math.min(binding, buffer),
    binding,
    buffer,
    source: `the WebGPU adapter's per-buffer limit (maxStorageBufferBindingSize ${binding.toLocaleString('en-US')}, maxBufferSize ${buffer.toLocaleString('en-US')} bytes)`,
  };
}
