import { formatBytes, InputError } from '@kstar/core';
import { backendMemoryLimit, type MemoryLimit } from '@kstar/kernels';

// plan.ts and tests import the wasm heap bound from here.
export { WASM_HEAP_MAX_BYTES } from '@kstar/kernels';

/**
 * Before step 1: a step whose predicted peak does not fit the backend's memory is refused with the numbers and the
 * ways out, instead of dying inside the backend a minute later (`RuntimeError: memory access out of bounds`).
 */
export function checkStepFits(
  predictedPeakBytes: number,
  backend: string,
  subject: { what: string },
  limit: MemoryLimit | undefined = backendMemoryLimit(backend),
): void {
  if (!limit || predictedPeakBytes <= limit.bytes) return;
  throw new InputError(
    `${subject.what} is predicted to need ${formatBytes(predictedPeakBytes)} (${Math.round(predictedPeakBytes).toLocaleString('en-US')} bytes), more than ${formatBytes(limit.bytes)} of ${limit.source} on the ${backend} backend: lower --batch, --seq or --context, add --activations checkpoint,mst, or pass --memory-budget ${formatBytes(limit.bytes).replace(' ', '')} to let the planner fit it`,
    'E_MEMORY',
  );
}

/** One tensor a step will allocate whole (a parameter, the logits), by what to call it in a message. */
export interface PlannedTensor {
  what: string;
  bytes: number;
}

/**
 * Before step 1 on WebGPU: a tensor larger than one buffer may be cannot exist there, whatever the device's total
 * memory; the largest such tensor is refused with the limit and the way out (`--activations mst` splits the logits
 * and the MLP into chunks; a smaller batch or sequence shrinks the activations; a parameter needs a smaller model).
 */
export function checkTensorsFit(tensors: readonly PlannedTensor[], limit: MemoryLimit | undefined): void {
  if (!limit) return;
  const largest = tensors.reduce<PlannedTensor | undefined>(
    (m, t) => (m && m.bytes >= t.bytes ? m : t),
    undefined,
  );
  if (!largest || largest.bytes <= limit.bytes) return;
  throw new InputError(
    `${largest.what} needs one buffer of ${formatBytes(largest.bytes)} (${largest.bytes.toLocaleString('en-US')} bytes), more than ${formatBytes(limit.bytes)}, ${limit.source}: lower --batch or --seq, add --activations mst (chunks the logits), or choose a smaller --vocab/--d-model`,
    'E_MEMORY',
  );
}
