import { addInPlaceKernel } from './accumulate.ts';
import { adamwKernel } from './adamw.ts';
import { causalSoftmaxGradKernel, causalSoftmaxKernel } from './causal-softmax.ts';
import { crossEntropyGradKernel, crossEntropyKernel } from './cross-entropy.ts';
import { flashAttentionGradKernel, flashAttentionKernel } from './flash-attention.ts';
import { packedAttentionGradKernel, packedAttentionKernel } from './flash-attention-packed.ts';
import { geluGradKernel, geluKernel } from './gelu.ts';
import { layerNormGradKernel, layerNormKernel } from './layer-norm.ts';
import { packKernel, unpackKernel } from './pack.ts';
import { dequantizeKernel, quantizeKernel } from './quantize.ts';
import { join24Kernel, split24Kernel } from './split24.ts';
import { registerWasmKernels } from './wasm-kernels.ts';
import { registerWebGPUColumnSum } from './webgpu-column-sum.ts';
import { registerWebGPUMatMul } from './webgpu-matmul.ts';

/**
 * Registers every K* kernel (`KstarAdamW`, `KstarAddInPlace` for cpu, wasm and webgpu) and the wasm kernels tfjs lacks
 * (`UnsortedSegmentSum`). Idempotent; `selectBackend` calls it. Registration is per backend name in tfjs's
 * global registry, so it may run before the backend is initialised.
 */
export function registerKstarKernels(): void {
  adamwKernel.register();
  addInPlaceKernel.register();
  packKernel.register();
  unpackKernel.register();
  quantizeKernel.register();
  dequantizeKernel.register();
  for (const k of [
    geluKernel,
    geluGradKernel,
    layerNormKernel,
    layerNormGradKernel,
    causalSoftmaxKernel,
    causalSoftmaxGradKernel,
    crossEntropyKernel,
    crossEntropyGradKernel,
    flashAttentionKernel,
    flashAttentionGradKernel,
    packedAttentionKernel,
    packedAttentionGradKernel,
  ])
    k.register();
  split24Kernel.register();
  join24Kernel.register();
  registerWasmKernels();
  registerWebGPUMatMul();
  registerWebGPUColumnSum();
}
