export type { NamedTensor } from '@kstar/core';
export type { LionHparams, LionOptions, LionReferenceHparams } from './hparams.ts';
export { LION_DEFAULTS, LION_HPARAMS } from './hparams.ts';
export type { LionArgs, LionStepHyper } from './kernel.ts';
export { lionKernel, lionUpdate } from './kernel.ts';
export { Lion } from './optimizer.ts';
export type { LionImpl, LionPlugin } from './plugin.ts';
export { effectiveWeightDecay, lion, lionFromReferenceHparams } from './plugin.ts';
export { lionStateBytes } from './state.ts';
