export type { NamedTensor } from '@kstar/core';
export type { AdamWHparams, AdamWOptions, AdamWReferenceHparams } from './hparams.ts';
export { ADAMW_DEFAULTS, ADAMW_HPARAMS } from './hparams.ts';
export { AdamW } from './optimizer.ts';
export type { AdamWImpl, AdamWPlugin } from './plugin.ts';
export { adamw, adamwFromReferenceHparams, adamwStateBytes } from './plugin.ts';
