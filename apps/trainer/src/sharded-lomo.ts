import { type Batch, type StepResult, TrainingEngine, TrainingError } from '@kstar/core';
import { inPlaceGradAccumulator } from '@kstar/kernels';
import { clippedUpdatePass, type FusedBackwardPlugin, gradNormPlugin } from '@kstar/optim-lomo';
import { type ZeroPlugin, zeroNormPass } from '@kstar/shard-zero';

/**
 * LOMO/AdaLomo with `clipGradNorm` under ZeRO: `lomoStep`'s two passes, with a norm pass that measures the GLOBAL
 * batch's gradient norm. `lomoStep`'s own norm engine has no sharding plugin, so on a rank it would see only the
 * rank's rows (every rank a different clip factor: replicas drift apart) and, at stage 3, no parameters at all. Here
 * the norm engine reads parameters through the run's ZeRO plugin and reduces each gradient as the update pass does
 * (`zeroNormPass`), so the clip factor is the single process's on every rank. Cost: the norm pass's reductions (a
 * second gradient volume, plus stage 3's gathers) on top of the ≈ 2× compute of LOMO's clipping.
 *
 * Returns the step function, or undefined when the optimizer is not LOMO/AdaLomo with `clipGradNorm` set (the
 * plain `engine.trainStep` is already exact under ZeRO).
 */
export function shardedLomoStep(
  engine: TrainingEngine,
  sharding: ZeroPlugin,
): ((batch: Batch) => Promise<StepResult & { gradNorm: number; clipCoef: number }>) | undefined {
  const plugin = engine.optimizer as Partial<FusedBackwardPlugin>;
  if (!('gradScale' in plugin) || plugin.clipGradNorm == null) return undefined;
  const clip = plugin.clipGradNorm;
  const globalNorm = shardedGlobalNorm(engine, sharding);
  return async (batch) => clippedUpdatePass(engine, batch, plugin, clip, await globalNorm(batch));
}

/**
 * The norm pass under ZeRO (LOMO's clipGradNorm, the trainer's --grad-clip): the global batch's gradient norm, the same
 * on every rank, from one forward + backward that updates nothing. A non-finite norm throws a TrainingError.
 */
export function shardedGlobalNorm(
  engine: TrainingEngine,
  sharding: ZeroPlugin,
): (batch: Batch) => Promise<number> {
  const pass = zeroNormPass(sharding);
  const normEngine = new TrainingEngine(engine.model, {
    optimizer: gradNormPlugin(), // never called: the sharding plugin consumes every gradient
    mode: engine.mode,
    segments: engine.segments.map((s) => [...s]),
    gradientRelease: engine.mode === 'segmented' ? engine.gradientRelease : undefined,
    ledger: engine.ledger,
    gradAccumulator: inPlaceGradAccumulator,
    sharding: pass,
  });
  return async (batch) => {
    try {
      await normEngine.trainStep(batch);
    } catch (e) {
      pass.reset();
      throw e;
    }
    const norm = await pass.takeNorm();
    if (!Number.isFinite(norm)) {
      throw new TrainingError(
        engine.step + 1,
        `step ${engine.step + 1}: the global gradient norm is ${norm}: parameters were not updated; lower the learning rate or check the data`,
      );
    }
    return norm;
  };
}
