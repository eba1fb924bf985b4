export type { NamedTensor } from '@kstar/core';
export type { Adam8bitHparams, Adam8bitOptions, Adam8bitReferenceHparams } from './hparams.ts';
export { ADAM8BIT_DEFAULTS, ADAM8BIT_HPARAMS } from './hparams.ts';
export type { Adam8bitArgs, Adam8bitStepHyper } from './kernel.ts';
export { adam8bitArrays, adam8bitKernel, adam8bitUpdate } from './kernel.ts';
export { Adam8bit } from './optimizer.ts';
export type { Adam8bitImpl, Adam8bitPlugin } from './plugin.ts';
export { adam8bit, adam8bitFromReferenceHparams } from './plugin.ts';
export { adam8bitStateBytes, isQuantized } from './state.ts';
