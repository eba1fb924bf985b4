import type { ActivationBackend } from '@kstar/gpt';
import { selectBackend } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';

type BackendRequest = Parameters<typeof selectBackend>[0];
type BackendAttempt = Awaited<ReturnType<typeof selectBackend>>['tried'][number];

/** The backends the trainer can run on: @kstar/kernels' and `cuda` (@kstar/backend-cuda). */
export type TrainerBackend = Awaited<ReturnType<typeof selectBackend>>['backend'] | 'cuda';
export type TrainerBackendRequest = BackendRequest | 'cuda';

/**
 * The backend whose activation bytes @kstar/gpt predicts for `backend`: cuda's Identity shares its input's buffer
 * like cpu's, so its activations are predicted as cpu's. The one place that decides it (train, plan, the planner).
 */
export function activationBackendOf(backend: TrainerBackend): ActivationBackend {
  return backend === 'cuda' ? 'cpu' : backend;
}

/**
 * `--backend`: `cuda` starts @kstar/backend-cuda (BackendUnavailableError naming the missing library or GPU);
 * `auto` tries `cuda` first and falls back to @kstar/kernels' order (tensorflow, webgpu, wasm, cpu); anything else
 * is @kstar/kernels' `selectBackend`.
 */
export async function selectTrainerBackend(
  request: TrainerBackendRequest,
  options: { log?: (line: string) => void } = {},
): Promise<{
  backend: TrainerBackend;
  tried: (BackendAttempt | { backend: 'cuda'; ok: boolean; reason?: string })[];
}> {
  const log = options.log ?? (() => {});
  const tried: { backend: 'cuda'; ok: boolean; reason?: string }[] = [];
  if (request === 'cuda' || request === 'auto') {
    try {
      const { startCudaBackend } = await import('@kstar/backend-cuda');
      await startCudaBackend();
      log('backend cuda: selected');
      return { backend: 'cuda', tried: [{ backend: 'cuda', ok: true }] };
    } catch (e) {
      if (request === 'cuda') throw e;
      const reason = (e as Error).message;
      tried.push({ backend: 'cuda', ok: false, reason });
      log(`backend cuda: unavailable (${reason})`);
    }
  }
  const r = await selectBackend(request as BackendRequest, options);
  return { backend: r.backend, tried: [...tried, ...r.tried] };
}

/** The `cuda` backend's memory in the shape of @kstar/kernels' `backendMemory` (nothing on other backends). */
export function cudaMemory(): {
  gpuBytesInUse?: number;
  gpuBytesAllocated?: number;
  peakGpuBytesInUse?: number;
  peakGpuBytesAllocated?: number;
  /** The high-water mark since `resetCudaStepPeak` (the step's own peak). */
  stepPeakGpuBytesInUse?: number;
  gpuPoolMaxFreeBytes?: number;
} {
  if (tf.getBackend() !== 'cuda') return {};
  const m = tf.memory() as tf.MemoryInfo & {
    numBytesInGPU: number;
    numBytesInGPUAllocated: number;
    peakBytesInGPU: number;
    peakBytesInGPUAllocated: number;
    stepPeakBytesInGPU: number;
  };
  return {
    gpuBytesInUse: m.numBytesInGPU,
    gpuBytesAllocated: m.numBytesInGPUAllocated,
    peakGpuBytesInUse: m.peakBytesInGPU,
    peakGpuBytesAllocated: m.peakBytesInGPUAllocated,
    stepPeakGpuBytesInUse: m.stepPeakBytesInGPU,
    // The stream-ordered pool keeps every freed block (release threshold: maximum): no bound on its slack.
    gpuPoolMaxFreeBytes: Number.POSITIVE_INFINITY,
  };
}

/** cuda: starts a new step-peak window (`cudaMemory().stepPeakGpuBytesInUse`); nothing on other backends. */
export function resetCudaStepPeak(): void {
  if (tf.getBackend() !== 'cuda') return;
  (tf.backend() as tf.KernelBackend & { resetStepPeak?: () => void }).resetStepPeak?.();
}
