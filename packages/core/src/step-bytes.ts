import type { ParamInfo } from './contracts.ts';
import { countParams, type StagedModel } from './model.ts';
import { segmentReads } from './segment-reads.ts';

/** Bytes a training step holds besides activations: the predicted terms that do not depend on the segment plan. */
export interface FixedStepBytes {
  /** Parameters: float32, or what a master-weights plugin stores for them. */
  params: number;
  /** Every parameter's optimizer state (`stateBytes`). */
  optimizerState: number;
  /** Partial gradients of parameters read by several segments (tied weights), waiting for their last segment. */
  waitingGrads(segments: readonly (readonly number[])[] | undefined): number;
}

/**
 * The non-activation terms of a step's predicted peak, from the plugins' own predictions. Call it before the engine
 * adopts the variables (a master-weights plugin frees them). The `kstar` CLI and the browser page both predict
 * with it.
 */
export function fixedStepBytes(
  model: StagedModel,
  optimizer: { stateBytes(shape: readonly number[], role?: ParamInfo['role']): number },
  masterWeights?: { bytesFor(shape: readonly number[]): number },
): FixedStepBytes {
  let state = 0;
  for (const [name, v] of model.variables) state += optimizer.stateBytes(v.shape, model.paramInfo(name).role);
  return {
    params: masterWeights
      ? [...model.variables.values()].reduce((sum, v) => sum + masterWeights.bytesFor(v.shape), 0)
      : 4 * countParams(model),
    optimizerState: state,
    waitingGrads(segments) {
      if (!segments) return 0;
      let bytes = 0;
      // The engine's use counts for this plan: a parameter read by several segments waits as a partial gradient.
      for (const [name, n] of segmentReads(model.stages, segments).useCount)
        if (n > 1) bytes += 4 * model.variables.get(name)!.size;
      return bytes;
    },
  };
}
