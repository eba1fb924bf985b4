import { totalmem } from 'node:os';
import { formatBytes, InputError } from '@kstar/core';

/** The wasm backend's heap cannot grow past this (wasm32: 4 GiB less one 64 KiB page; tfjs-backend-wasm's getHeapMax). */
export const WASM_HEAP_MAX_BYTES = 4_294_901_760;

/** How much memory a backend's tensors can use, and where that number comes from (for the message). */
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
 * Before step 1: a step whose predicted peak does not fit the backend's memory is refused with the numbers and the
 * ways out, instead of dying inside the backend a minute later (`RuntimeError: memory access out of bounds`).
 */
export function checkStepFits(
  predictedPeakBytes: number,
  backend: string,
  subject: { what: string },
  limit: MemoryLimit | undefined = backendMemoryLimit(backend),
): void {
  if (!limit || predictedPeakBytes <= limit.bytes) return;
  throw new InputError(
    `${subject.what} is predicted to need ${formatBytes(predictedPeakBytes)} (${Math.round(predictedPeakBytes).toLocaleString('en-US')} bytes), more than ${formatBytes(limit.bytes)} of ${limit.source} on the ${backend} backend: lower --batch, --seq or --context, add --activations checkpoint,mst, or pass --memory-budget ${formatBytes(limit.bytes).replace(' ', '')} to let the planner fit it`,
    'E_MEMORY',
  );
}

/** One tensor a step will allocate whole (a parameter, the logits), by what to call it in a message. */
export interface PlannedTensor {
  what: string;
  bytes: number;
}

/**
 * WebGPU's per-buffer limit on the active device: the smaller of `maxStorageBufferBindingSize` (a kernel cannot bind
 * a larger tensor) and `maxBufferSize` (none can be allocated). Undefined off WebGPU or before a device exists.
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

/**
 * Before step 1 on WebGPU: a tensor larger than one buffer may be cannot exist there, whatever the device's total
 * memory; the largest such tensor is refused with the limit and the way out (`--activations mst` splits the logits
 * and the MLP into chunks; a smaller batch or sequence shrinks the activations; a parameter needs a smaller model).
 */
export function checkTensorsFit(tensors: readonly PlannedTensor[], limit: MemoryLimit | undefined): void {
  if (!limit) return;
  const largest = tensors.reduce<PlannedTensor | undefined>(
    (m, t) => (m && m.bytes >= t.bytes ? m : t),
    undefined,
  );
  if (!largest || largest.bytes <= limit.bytes) return;
  throw new InputError(
    `${largest.what} needs one buffer of ${formatBytes(largest.bytes)} (${largest.bytes.toLocaleString('en-US')} bytes), more than ${formatBytes(limit.bytes)}, ${limit.source}: lower --batch or --seq, add --activations mst (chunks the logits), or choose a smaller --vocab/--d-model`,
    'E_MEMORY',
  );
}
