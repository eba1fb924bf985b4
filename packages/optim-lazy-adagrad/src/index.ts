export type { NamedTensor } from '@kstar/core';
export type {
  LazyAdagradHparams,
  LazyAdagradOptions,
  LazyAdagradReferenceHparams,
  LazyRowsMode,
} from './hparams.ts';
export { defaultGroupOf, LAZY_ADAGRAD_DEFAULTS, LAZY_ADAGRAD_HPARAMS } from './hparams.ts';
export type { AdagradArgs, AdagradStepHyper, RowSelection } from './kernel.ts';
export { lazyAdagradKernel, lazyAdagradUpdate } from './kernel.ts';
export type { LazyAdagradClassOptions } from './optimizer.ts';
export { LazyAdagrad } from './optimizer.ts';
export type { LazyAdagradImpl, LazyAdagradPlugin } from './plugin.ts';
export { lazyAdagrad, lazyAdagradFromReferenceHparams } from './plugin.ts';
export type { QuantizedArray, QuantizedTensor, QuantizeImpl } from './quantize.ts';
export {
  canReadSync,
  dequantizeArray,
  dequantizeTensor,
  QUANT_BLOCK,
  quantizeArray,
  quantizedBytes,
  quantizeTensor,
} from './quantize.ts';
export type { LazyAdagradState } from './state.ts';
export { denseStateBytes, lazyRowStateBytes, MIN_SLAB_ROWS, slabCapacity } from './state-bytes.ts';
export { GroupWindow } from './window.ts';
