export type { AdaLomoKernelArgs, AdaLomoStateVars, AdaLomoStepHyper } from './adalomo-kernel.ts';
export { adalomoKernel, adalomoUpdate } from './adalomo-kernel.ts';
export type {
  AdaLomoHparams,
  AdaLomoOptions,
  AdaLomoReferenceHparams,
  LomoCommonOptions,
  LomoHparams,
  LomoOptions,
  LomoReferenceHparams,
} from './hparams.ts';
export {
  ADALOMO_DEFAULTS,
  ADALOMO_HPARAMS,
  LOMO_DEFAULTS,
  LOMO_HPARAMS,
  lomoAccumulationError,
} from './hparams.ts';
export type { LomoKernelArgs, LomoStepHyper } from './lomo-kernel.ts';
export { lomoKernel, lomoUpdate } from './lomo-kernel.ts';
export type { AdaLomoPlugin, FusedBackwardPlugin, LomoImpl, LomoPlugin } from './plugin.ts';
export { adalomo, adalomoFromReferenceHparams, lomo, lomoFromReferenceHparams } from './plugin.ts';
export type { AdaLomoStateKey } from './state.ts';
export { adalomoStateBytes, adalomoStateShapes, lomoStateBytes } from './state.ts';
export type { GradNormPlugin, LomoStepOptions, LomoStepResult } from './step.ts';
export { clippedUpdatePass, gradNormPlugin, lomoGlobalNorm, lomoStep } from './step.ts';
