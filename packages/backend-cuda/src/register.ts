import { BackendUnavailableError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { CudaBackend } from './backend.ts';
import { CudaDevice } from './device.ts';
import { registerCudaKernels } from './kernels.ts';
import { type CudaLibraries, loadCudaLibraries } from './native.ts';

export const CUDA_BACKEND_NAME = 'cuda';

let libraries: CudaLibraries | null = null;

/**
 * Loads the CUDA libraries (throws BackendUnavailableError naming the missing one), then registers the tfjs
 * backend `cuda` and its kernels. The device itself starts in the backend's factory, on `tf.setBackend('cuda')`.
 * Idempotent.
 */
export async function registerCudaBackend(priority = 3): Promise<void> {
  libraries ??= await loadCudaLibraries();
  registerCudaKernels(CUDA_BACKEND_NAME);
  if (tf.findBackendFactory(CUDA_BACKEND_NAME) != null) return;
  const libs = libraries;
  tf.registerBackend(CUDA_BACKEND_NAME, () => new CudaBackend(new CudaDevice(libs)), priority);
}

/**
 * Registers and activates `cuda` (`tf.setBackend` + `tf.ready`). Throws BackendUnavailableError when a library is
 * missing or the device does not start (no GPU, driver too old), with tfjs's reason.
 */
export async function startCudaBackend(): Promise<CudaBackend> {
  await registerCudaBackend();
  // tfjs logs a factory's exception as a warning and returns false: catch it here to name the reason.
  let reason = '';
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    reason += args.map(String).join(' ');
  };
  let ok: boolean;
  try {
    ok = await tf.setBackend(CUDA_BACKEND_NAME);
  } finally {
    console.warn = warn;
  }
  if (!ok) {
    throw new BackendUnavailableError(
      CUDA_BACKEND_NAME,
      `backend 'cuda' requested but the GPU did not start (${reason.trim() || 'tf.setBackend returned false'}): check nvidia-smi, or use --backend webgpu or wasm`,
    );
  }
  await tf.ready();
  return tf.backend() as CudaBackend;
}
