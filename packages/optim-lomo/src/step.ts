import {
  type Batch,
  type GradAccumulator,
  InputError,
  type OptimizerPlugin,
  type OptimizerState,
  SPECIFICATION_VERSION,
  type StepResult,
  TrainingEngine,
  TrainingError,
} from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import type { FusedBackwardPlugin } from './plugin.ts';

/**
 * LOMO's global-norm clipping, the paper's two-backward-pass scheme. A fused update moves a parameter as soon as
 * its gradient exists, but the global norm needs every gradient first. So a step with `clipGradNorm` runs:
 *   1. a NORM pass: one segmented forward + backward through a second `TrainingEngine` over the same model whose
 *      optimizer (`gradNormPlugin`) only adds Σg² of each released gradient into a scalar and updates nothing;
 *      every gradient is still freed at once, so the pass holds no more gradient memory than the real step;
 *   2. the UPDATE pass: `engine.trainStep(batch)` with the plugin's `gradScale` = min(1, clipGradNorm/(‖g‖+1e-6)).
 * Cost: ≈ one extra forward + backward, i.e. ≈ 2× the step time (the LOMO maintainers report the same, CoLLiE #150).
 */

/** A stateless optimizer plugin that sums ‖g‖² of every gradient it is handed and updates nothing. */
export interface GradNormPlugin extends OptimizerPlugin {
  readonly name: 'lomo-grad-norm';
  /** The global L2 norm of the gradients seen since the last call (reads the device asynchronously), then resets. */
  take(): Promise<number>;
  /** Drops the partial sums (after a failed pass). */
  reset(): void;
}

export function gradNormPlugin(): GradNormPlugin {
  // One scalar per gradient: 4 bytes each, summed after the pass (WebGPU in Node has no synchronous read).
  let parts: tf.Tensor[] = [];
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'optimizer',
    name: 'lomo-grad-norm',
    describe: () => ({ role: 'LOMO norm pass: Σ‖g‖², no update' }),
    init: (): OptimizerState => ({}),
    update(_param, grad) {
      parts.push(tf.tidy(() => tf.sum(tf.square(grad))));
    },
    stateBytes: () => 0,
    async take() {
      const taken = parts;
      parts = [];
      if (taken.length === 0) return 0;
      const total = tf.tidy(() => tf.sqrt(tf.addN(taken)));
      tf.dispose(taken);
      const value = (await total.data())[0]!;
      total.dispose();
      return value;
    },
    reset() {
      tf.dispose(parts);
      parts = [];
    },
  };
}

export interface LomoStepOptions {
  /** The gradient accumulator the main engine uses for tied parameters (the norm pass uses the same). */
  gradAccumulator?: GradAccumulator;
}

interface NormPass {
  engine: TrainingEngine;
  plugin: GradNormPlugin;
}

/** One norm engine per training engine, made on first use (it shares the model, segments and ledger). */
const normPasses = new WeakMap<TrainingEngine, NormPass>();

function normPassOf(engine: TrainingEngine, options: LomoStepOptions): NormPass {
  let pass = normPasses.get(engine);
  if (pass == null) {
    const plugin = gradNormPlugin();
    const normEngine = new TrainingEngine(engine.model, {
      optimizer: plugin,
      mode: engine.mode,
      segments: engine.segments.map((s) => [...s]),
      gradientRelease: engine.mode === 'segmented' ? engine.gradientRelease : undefined,
      ledger: engine.ledger,
      // The same stored weights (a master-weights plugin adopts each parameter once; the second engine reads them).
      ...(engine.masterWeights ? { masterWeights: engine.masterWeights } : {}),
      ...(options.gradAccumulator ? { gradAccumulator: options.gradAccumulator } : {}),
    });
    pass = { engine: normEngine, plugin };
    normPasses.set(engine, pass);
  }
  return pass;
}

/**
 * The global L2 norm of the gradient of `batch` under `engine`'s model, from one backward pass that keeps no
 * gradient (each is reduced to ‖g‖² and freed as soon as it is complete). Parameters do not change.
 */
export async function lomoGlobalNorm(
  engine: TrainingEngine,
  batch: Batch,
  options: LomoStepOptions = {},
): Promise<number> {
  const pass = normPassOf(engine, options);
  try {
    await pass.engine.trainStep(batch);
  } catch (e) {
    pass.plugin.reset();
    throw e;
  }
  return pass.plugin.take();
}

export interface LomoStepResult extends StepResult {
  /** The global gradient norm of the norm pass, or null without `clipGradNorm` (single pass). */
  gradNorm: number | null;
  /** The multiplier applied to every gradient: min(1, clipGradNorm/(gradNorm + 1e-6)), or 1. */
  clipCoef: number;
}

function isFusedBackward(p: OptimizerPlugin): p is FusedBackwardPlugin {
  return 'clipGradNorm' in p && 'gradScale' in p;
}

/**
 * One LOMO/AdaLomo training step of `engine` (whose optimizer must be `plugin`). Without `clipGradNorm` it is
 * `engine.trainStep(batch)`. With it, a norm pass first measures the global gradient norm (≈ one extra forward +
 * backward: ≈ 2× step time), then the update pass clips every gradient by min(1, clipGradNorm/(norm + 1e-6)) —
 * the reference's `grad_norm(loss)` followed by `fused_backward(loss, lr)`. A non-finite norm throws a
 * `TrainingError` before any parameter moves.
 */
export async function lomoStep(
  engine: TrainingEngine,
  batch: Batch,
  plugin: OptimizerPlugin = engine.optimizer,
  options: LomoStepOptions = {},
): Promise<LomoStepResult> {
  if (engine.optimizer !== plugin) {
    throw new InputError(
      `lomoStep: the engine's optimizer is '${engine.optimizer.name}', not the plugin passed ('${plugin.name}'): build the engine with this plugin`,
    );
  }
  if (!isFusedBackward(plugin)) {
    throw new InputError(
      `lomoStep: optimizer '${plugin.name}' is not a LOMO/AdaLomo plugin (it lacks clipGradNorm/gradScale): use lomo() or adalomo()`,
    );
  }
  const clip = plugin.clipGradNorm;
  if (clip == null) {
    const r = await engine.trainStep(batch);
    return { ...r, gradNorm: null, clipCoef: 1 };
  }
  const norm = await lomoGlobalNorm(engine, batch, options);
  if (!Number.isFinite(norm)) {
    throw new TrainingError(
      engine.step + 1,
      `step ${engine.step + 1}: the global gradient norm is ${norm}: parameters were not updated; lower the learning rate or check the data`,
    );
  }
  return clippedUpdatePass(engine, batch, plugin, clip, norm);
}

/**
 * The update pass of a clipped LOMO/AdaLomo step, the global gradient `norm` known (`lomoStep`'s norm pass, or
 * one across ZeRO ranks): `engine.trainStep` with every gradient scaled by min(1, clip/(norm + 1e-6)).
 */
export async function clippedUpdatePass(
  engine: TrainingEngine,
  batch: Batch,
  plugin: Partial<Pick<FusedBackwardPlugin, 'gradScale'>>,
  clip: number,
  norm: number,
): Promise<StepResult & { gradNorm: number; clipCoef: number }> {
  const clipCoef = Math.min(1, clip / (norm + 1e-6));
  plugin.gradScale = clipCoef;
  try {
    const r = await engine.trainStep(batch);
    return { ...r, gradNorm: norm, clipCoef };
  } finally {
    plugin.gradScale = null;
  }
}
