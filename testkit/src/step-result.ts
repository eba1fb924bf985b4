import type { StepResult } from '@kstar/core';

/** A step-1 `StepResult` (loss 1) whose only measured bytes are `peakBytes`: what a planner's `afterStep` reads. */
export function stepResultPeaking(peakBytes: number): StepResult {
  return {
    step: 1,
    loss: 1,
    paramBytes: 0,
    optimizerStateBytes: 0,
    gradPeakBytes: 0,
    activationPeakBytes: 0,
    peakBytes,
    hostPeakBytes: 0,
  };
}
