export { addInPlace, addInPlaceKernel, inPlaceGradAccumulator } from './accumulate.ts';
export type { AdamWArgs, AdamWHyper } from './adamw.ts';
export { adamwKernel, adamwUpdate } from './adamw.ts';
export type {
  BackendAttempt,
  BackendMemory,
  BackendName,
  BackendRequest,
  SelectBackendOptions,
} from './backends.ts';
export { AUTO_ORDER, backendMemory, installHint, selectBackend } from './backends.ts';
export type { KernelSpec, KstarKernel, NativeBackend, RunOptions } from './define-kernel.ts';
export { defineKernel } from './define-kernel.ts';
export { inPlaceOutput } from './in-place.ts';
export type { PackArgs, PackBits, UnpackArgs } from './pack.ts';
export {
  packArray,
  packedLength,
  packInts,
  packIntsOps,
  packKernel,
  unpackArray,
  unpackInts,
  unpackIntsOps,
  unpackKernel,
} from './pack.ts';
export type { DequantizeArgs, QuantizeArgs, Quantized, QuantizeOptions } from './quantize.ts';
export {
  blockAbsmax,
  checkBlockSize,
  createDynamicMap,
  DEFAULT_BLOCK_SIZE,
  dequantizeArray,
  dequantizeBlockwise,
  dequantizeKernel,
  dequantizeValue,
  dynamicMap,
  nearestCode,
  quantizeArray,
  quantizeBlockwise,
  quantizedBytes,
  quantizeKernel,
  quantizeValue,
  WGSL_FLOAT_BITS,
  wgslAbsmaxLoop,
  wgslCodeBook,
  wgslQuantFns,
  withHelpers,
  zeroCode,
} from './quantize.ts';
export { registerKstarKernels } from './register-kernels.ts';
export { sliceWriter, writeSlice, writeSliceKernel } from './slice-write.ts';
export type { WasmBackendLike } from './wasm-kernels.ts';
export {
  invalidateWasmCaches,
  oneHotWasm,
  registerWasmKernels,
  unsortedSegmentSumWasm,
} from './wasm-kernels.ts';
export { registerWasmMatMulFix, unregisterWasmMatMulFix } from './wasm-matmul.ts';
export type { AdapterProbe, MinimalGPUAdapter, MinimalGPUDevice } from './webgpu-node.ts';
export { initWebGPU, probeWebGPUAdapter, shutdownWebGPU, webgpuDevice } from './webgpu-node.ts';
export type { FlatProgram, FlatProgramSpec, WebGPUBackendLike } from './wgsl.ts';
export { flat, flatProgram } from './wgsl.ts';
