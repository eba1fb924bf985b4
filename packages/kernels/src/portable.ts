// Everything in @kstar/kernels that runs anywhere (Node, browsers, workers): the kernels, packing, quantization,
// WebGPU helpers that take a device. Backend selection differs per platform: index.ts (Node), browser.ts.
export { addInPlace, addInPlaceKernel, inPlaceGradAccumulator } from './accumulate.ts';
export type { AdamStepConstants, AdamStepHyper } from './adam-constants.ts';
export { adamStepConstants } from './adam-constants.ts';
export type { AdamWArgs, AdamWHyper } from './adamw.ts';
export { adamwKernel, adamwUpdate } from './adamw.ts';
export type { InputArrays } from './array-kernels.ts';
export { inPlaceArrayKernels } from './array-kernels.ts';
export type { BackendMemory } from './backend-memory.ts';
export { backendMemory } from './backend-memory.ts';
export type { CausalSoftmaxArgs, CausalSoftmaxGradArgs } from './causal-softmax.ts';
export { causalSoftmaxGradKernel, causalSoftmaxKernel } from './causal-softmax.ts';
export type { CrossEntropyArgs, CrossEntropyGradArgs, CrossEntropyResult } from './cross-entropy.ts';
export { crossEntropyGradKernel, crossEntropyKernel } from './cross-entropy.ts';
export type { CustomOpBody, CustomOpOptions } from './custom-op.ts';
export { customOp } from './custom-op.ts';
export type {
  CpuBackendLike,
  CpuKernel,
  KernelBackends,
  KernelSpec,
  KstarKernel,
  NativeBackend,
  RunOptions,
  TypedKernelFunc,
  WasmKernel,
  WebGPUKernel,
  WebGPUKernelBackend,
} from './define-kernel.ts';
export { activeWebGPUBackend, cpuFloats, defineKernel, toKernelFunc } from './define-kernel.ts';
export type { FactoredDims, FactoredFactors, WgslGradient } from './factored-moment.ts';
export {
  batchRowMeanWebGPU,
  colRsqrtFactors,
  factoredDims,
  factoredMomentArrays,
  factoredMomentOps,
  factoredMomentWebGPU,
  factoredRsqrtOps,
  rowRsqrtFactors,
} from './factored-moment.ts';
export type { ForEachU, HfSecondMoment, SecondMoment, SecondMomentWebGPU } from './factored-update.ts';
export {
  clippedScale,
  rmsOps,
  secondMomentArrays,
  secondMomentOf,
  secondMomentOps,
  secondMomentWebGPU,
} from './factored-update.ts';
export type {
  FlashAttentionArgs,
  FlashAttentionGradArgs,
  FlashAttentionGrads,
  FlashAttentionOptions,
  FlashAttentionResult,
} from './flash-attention.ts';
export { flashAttention, flashAttentionGradKernel, flashAttentionKernel } from './flash-attention.ts';
export type {
  PackedAttentionArgs,
  PackedAttentionGradArgs,
  PackedAttentionResult,
} from './flash-attention-packed.ts';
export {
  flashAttentionPacked,
  packedAttentionGradKernel,
  packedAttentionKernel,
} from './flash-attention-packed.ts';
export type { FlashParityCase } from './flash-attention-parity.ts';
export {
  flashAttentionParity,
  flashReference,
  GPT2_FLASH_CASES,
  TINY_FLASH_CASES,
} from './flash-attention-parity.ts';
export type { ParityRow, ParityShapes } from './fused-parity.ts';
export {
  formatParity,
  fusedKernelParity,
  GPT2_PARITY_SHAPES,
  PARITY_TOLERANCE,
  TINY_PARITY_SHAPES,
} from './fused-parity.ts';
export { GELU_A, GELU_C, geluGradKernel, geluKernel } from './gelu.ts';
export { canWriteInPlace, inPlaceOutput, inPlaceOutputs, releaseAfterWebGPUWrite } from './in-place.ts';
export type { LayerNormArgs, LayerNormGradArgs, LayerNormGradResult, LayerNormResult } from './layer-norm.ts';
export { LN_CHUNK, layerNormGradKernel, layerNormKernel } from './layer-norm.ts';
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
export type { RowProgramSpec } from './row-program.ts';
export { ROW_WORKGROUP, rowProgram, rowWorkgroup } from './row-program.ts';
export { sliceWriter, writeSlice, writeSliceKernel } from './slice-write.ts';
export type { Join24Args, Split24, Split24Args } from './split24.ts';
export {
  expand24,
  join24Kernel,
  join24Ops,
  joinArray,
  joinBits,
  joinValue,
  reconstruct24,
  SPLIT24_SATURATE_BITS,
  split24,
  split24Bytes,
  split24Kernel,
  split24Ops,
  splitArray,
  splitBits,
  splitValue,
} from './split24.ts';
export { checkFloat32, checkShapeOfParam, checkStateShapes } from './update-checks.ts';
export type { WgslUpdate } from './update-scale-webgpu.ts';
export { updateScaleWebGPU } from './update-scale-webgpu.ts';
export type { WasmBackendLike } from './wasm-kernels.ts';
export {
  invalidateWasmCaches,
  oneHotWasm,
  registerWasmKernels,
  unsortedSegmentSumWasm,
} from './wasm-kernels.ts';
export { registerWasmMatMulFix, unregisterWasmMatMulFix } from './wasm-matmul.ts';
export { ABSMAX_GROUPS, absMaxOnDevice } from './webgpu-absmax.ts';
export {
  COLUMN_SUM_CHUNK,
  leadingAxes,
  registerWebGPUColumnSum,
  unregisterWebGPUColumnSum,
  webgpuColumnSumCount,
} from './webgpu-column-sum.ts';
export {
  flushWebGPU,
  guardWebGPUStep,
  takeWebGPUDeviceErrors,
  watchWebGPUDevice,
} from './webgpu-errors.ts';
export * from './webgpu-f16-support.ts';
export * from './webgpu-matmul.ts';
export {
  checkF16Tile,
  F16_DIRECTIVES,
  F16_TILES,
  type F16MatMulSpec,
  type F16TileName,
  f16MatMulProgram,
  f16MatMulShaderKey,
  f16TileWorkgroupBytes,
  type SubgroupMatrixTile,
} from './webgpu-matmul-f16-program.ts';
export * from './webgpu-matmul-parity.ts';
export * from './webgpu-matmul-tiles.ts';
export type { WebGPUPoolStats } from './webgpu-pool.ts';
export {
  boundWebGPUPool,
  DEFAULT_MAX_FREE_POOL_BYTES,
  resetWebGPUPoolPeaks,
  webgpuPoolStats,
} from './webgpu-pool.ts';
export type { FlatProgram, FlatProgramSpec, WebGPUBackendLike } from './wgsl.ts';
export { flat, flatProgram } from './wgsl.ts';
