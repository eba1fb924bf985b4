import type { Batch, OptimizerPlugin, StepResult, TrainingEngine } from '@kstar/core';
import { TrainingError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';

/** An optimizer whose every gradient is multiplied by `scale` first (1: untouched). Same name and state as `inner`. */
export type ScaledOptimizer = OptimizerPlugin & { scale: number };

/**
 * Wraps `inner` so that updates see `scale · grad`. Works with gradient release, partial gradients and row chunks
 * (scaling is element-wise and linear); hyper-parameters (`learningRate`) pass through to `inner`.
 */
export function scaledOptimizer(inner: OptimizerPlugin, maxNorm: number): ScaledOptimizer {
  const wrapper = Object.create(inner) as ScaledOptimizer;
  wrapper.scale = 1;
  wrapper.describe = () => ({ ...inner.describe(), gradClip: maxNorm });
  wrapper.update = (param, grad, state, step, part) => {
    if (wrapper.scale === 1) return inner.update(param, grad, state, step, part);
    const scaled = tf.mul(grad, wrapper.scale);
    try {
      inner.update(param, scaled, state, step, part);
    } finally {
      scaled.dispose();
    }
  };
  return wrapper;
}

/** The global L2 gradient norm of `batch` under `engine`'s model, parameters unchanged (e.g. `lomoGlobalNorm`). */
export type GlobalNorm = (engine: TrainingEngine, batch: Batch) => Promise<number>;

/**
 * One step clipped by the global gradient norm, the two-pass way LOMO does it (so gradient release still works): a
 * norm pass (`globalNorm`: one extra forward + backward, no update, no gradient kept, such as `@kstar/optim-lomo`'s
 * `lomoGlobalNorm`) measures ‖g‖, then the update pass multiplies every gradient by min(1, maxNorm/(‖g‖ + 1e-6)), as
 * torch's `clip_grad_norm_`. `engine`'s optimizer must be `optimizer` (or wrap it).
 */
export async function clippedStep(
  engine: TrainingEngine,
  optimizer: ScaledOptimizer,
  batch: Batch,
  maxNorm: number,
  globalNorm: GlobalNorm,
): Promise<StepResult & { gradNorm: number }> {
  const norm = await globalNorm(engine, batch);
  if (!Number.isFinite(norm)) {
    throw new TrainingError(
      engine.step + 1,
      `step ${engine.step + 1}: the global gradient norm is ${norm}: parameters were not updated; lower the learning rate or check the data`,
    );
  }
  optimizer.scale = Math.min(1, maxNorm / (norm + 1e-6));
  try {
    return { ...(await engine.trainStep(batch)), gradNorm: norm };
  } finally {
    optimizer.scale = 1;
  }
}
