import { BackendUnavailableError } from '@kstar/core';
import type { BackendAttempt, BackendName } from './backends.ts';
import { registerKstarKernels } from './register-kernels.ts';

/**
 * The end of `selectBackend` (Node and browser alike) once `backend` has started: the attempt recorded, K*'s
 * kernels registered, the choice logged.
 */
export function backendSelected(
  backend: BackendName,
  tried: BackendAttempt[],
  log: (line: string) => void,
): { backend: BackendName; tried: BackendAttempt[] } {
  tried.push({ backend, ok: true });
  registerKstarKernels();
  log(`backend ${backend}: selected`);
  return { backend, tried };
}

/** No backend of `tried` could start (under 'auto'): each one's reason, then `hint` (how to get cpu). */
export function noBackendStarted(tried: readonly BackendAttempt[], hint: string): BackendUnavailableError {
  return new BackendUnavailableError(
    'cpu',
    `no backend could start (${tried.map((t) => `${t.backend}: ${t.reason}`).join('; ')}): ${hint}`,
  );
}
