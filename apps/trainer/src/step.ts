import type { Batch, StepResult } from '@kstar/core';
import { guardWebGPUStep, inPlaceGradAccumulator } from '@kstar/kernels';
import { lomoGlobalNorm } from '@kstar/optim-lomo';
import { clippedStep, type GlobalNorm } from '@kstar/train-loop';
import type { RunSetup } from './setup.ts';
import { shardedGlobalNorm, shardedLomoStep } from './sharded-lomo.ts';

/**
 * One optimizer step of the run, as its flags compose it: over `batches` (this rank's rows of the step's
 * micro-batches: one without `--grad-accum`), clipped by the global norm (`--grad-clip`: the optimizer's own two-pass
 * step for LOMO/AdaLomo, a norm pass then a scaled update for the others; under ZeRO the norm of the global batch),
 * accumulated (`--grad-accum`), inside WebGPU error scopes (a validation/out-of-memory error or a lost device throws
 * TrainingError(step)) and, with the planner, retried with a tighter plan after an out-of-memory error.
 */
export function stepFunction(
  setup: RunSetup,
  gradClip: number | undefined,
): (step: number, batches: Batch[]) => Promise<StepResult> {
  const { engine, entry, clipped, accum, sharding, planner } = setup;
  // The norm pass: over the global batch under ZeRO (see sharded-lomo.ts), else LOMO's gradient-free backward pass.
  const shardedNorm = sharding && clipped ? shardedGlobalNorm(engine, sharding) : undefined;
  const globalNorm: GlobalNorm = shardedNorm
    ? (_engine, batch) => shardedNorm(batch)
    : (e, batch) => lomoGlobalNorm(e, batch, { gradAccumulator: inPlaceGradAccumulator });
  // LOMO/AdaLomo's own global-norm clipping under ZeRO: the same norm pass, then their scaled update.
  const shardedLomo = sharding && entry.trainStep ? shardedLomoStep(engine, sharding) : undefined;
  const one = (b: Batch): Promise<StepResult> =>
    shardedLomo
      ? shardedLomo(b)
      : clipped
        ? clippedStep(engine, clipped, b, gradClip!, globalNorm)
        : entry.trainStep
          ? entry.trainStep(engine, b)
          : engine.trainStep(b);
  return async (step, batches) => {
    const once = () =>
      guardWebGPUStep(step, () => (accum ? accum.step(engine, batches, one) : one(batches.at(-1)!)));
    // With the planner: an out-of-memory error re-plans tighter and retries this step with these batches.
    const r = await (planner ? planner.guard(engine, step, once) : once());
    await planner?.afterStep(engine, r, step + 1);
    return r;
  };
}
