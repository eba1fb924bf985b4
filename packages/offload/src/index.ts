export { HostCopy } from './host-copy.ts';
export type { HostAdamWHparams, HostUpdateRule } from './host-update.ts';
export { hostAdamW } from './host-update.ts';
export type { OffloadStrategy } from './offload.ts';
export { HOST_MEMORY_BACKENDS, offload, offloadCodec, offloadEffective } from './offload.ts';
export type { StateOffloadOptions, StateOffloadPlugin } from './state-offload.ts';
export { offloadState } from './state-offload.ts';
