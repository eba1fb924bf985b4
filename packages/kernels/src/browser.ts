// The browser entry (the `browser` export condition): the portable kernels plus backend selection through the
// page's WebGPU or wasm. Nothing here imports Node modules or Dawn.

export type { BackendAttempt, BackendName, BackendRequest, SelectBackendOptions } from './backends.ts';
export { BROWSER_AUTO_ORDER, selectBackend } from './backends-browser.ts';
export * from './portable.ts';
