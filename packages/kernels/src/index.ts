// The Node entry: the portable kernels plus backend selection that loads tfjs-node, Dawn (`webgpu`) or wasm.

export type {
  BackendAttempt,
  BackendName,
  BackendRequest,
  SelectBackendOptions,
} from './backends.ts';
export { AUTO_ORDER, installHint, selectBackend } from './backends.ts';
export {
  backendMemoryLimit,
  type MemoryLimit,
  processMemoryLimit,
  WASM_HEAP_MAX_BYTES,
  webgpuBufferLimit,
} from './memory-limits.ts';
export * from './portable.ts';
export type { AdapterProbe, MinimalGPUAdapter, MinimalGPUDevice } from './webgpu-node.ts';
export {
  initWebGPU,
  maxFreePoolBytes,
  probeWebGPUAdapter,
  shutdownWebGPU,
  webgpuDevice,
} from './webgpu-node.ts';
