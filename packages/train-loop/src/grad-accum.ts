import type {
  Batch,
  GradAccumulator,
  OptimizerPlugin,
  ShardedTraining,
  ShardingPlugin,
  StepResult,
  TrainingEngine,
} from '@kstar/core';
import { InputError, TrainingError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';

/** Bytes gradient accumulation over `micro` micro-batches keeps between them: one float32 sum per parameter (none for 1). */
export function accumulatedGradBytes(micro: number, paramCount: number): number {
  return micro > 1 ? 4 * paramCount : 0;
}

/**
 * Gradient accumulation (the trainer's `--grad-accum K`): one optimizer step over K micro-batches. The first K − 1
 * micro-batches only compute gradients (summed per parameter); the last runs the engine's normal step, whose
 * optimizer (wrapped by `wrap`) receives `(Σ earlier gradients + this gradient) / K`: the gradient of the mean loss
 * over the K × B rows, as one step on a batch K times larger computes it. The step's loss is the mean of the
 * micro-batch losses (equal-sized micro-batches: the mean over all rows). Memory: one float32 gradient per parameter
 * is kept between micro-batches. Build the engine with `onGradient: accumulation.onGradient` and the optimizer
 * `accumulation.wrap(optimizer)`, then call `accumulation.step(engine, microBatches, (b) => engine.trainStep(b))`.
 *
 * Checkpoints are written between optimizer steps only, so no micro-batch position needs saving: the data sampler's
 * state after `step × K` micro-batches resumes exactly.
 *
 * With `maxNorm` X (the trainer's `--grad-clip X`) the update needs the norm of the whole accumulated gradient
 * before it starts, but the last micro-batch's gradients normally reach the optimizer during its backward pass. So
 * all K micro-batches only compute gradients, the sum's norm ‖Σg/K‖ gives the factor min(1, X/(‖Σg/K‖ + 1e-6))
 * (torch's `clip_grad_norm_`), and the engine's step on the last micro-batch then feeds the optimizer that factor ×
 * Σg/K in place of its own gradient: one extra forward + backward per optimizer step, as the unaccumulated
 * `clippedStep` pays for its norm pass. Memory as without clipping: the sum plus one micro-batch's gradients.
 */
/** Sums into a new tensor (the engine's own default). */
const allocatingAccumulator: GradAccumulator = { inPlace: false, add: (acc, g) => tf.add(acc, g) };

export class GradAccumulation {
  /** Σ of the earlier micro-batches' gradients, by parameter name. */
  private readonly sums = new Map<string, tf.Tensor>();
  /** Σ of the earlier micro-batches' losses. */
  private lossSum = 0;
  /** The parameter whose gradient the engine hands to the optimizer next (set by `onGradient`). */
  private current: string | undefined;
  /**
   * Clipping only: the sums hold all K micro-batches, and updates use `clipScale` × Σ/K instead of the engine's
   * gradient (the last micro-batch's, already in the sum).
   */
  private complete = false;
  private clipScale = 1;
  /** The memory peaks of this step's gradient-only micro-batches (the engine measures only its own step). */
  private microPeaks: Pick<
    StepResult,
    'peakBytes' | 'gradPeakBytes' | 'activationPeakBytes' | 'hostPeakBytes'
  > = noPeaks();

  /** Clip the accumulated mean gradient by its global L2 norm to this (none: no clipping). */
  readonly maxNorm: number | undefined;
  private readonly accumulator: GradAccumulator;

  /**
   * `micro`: micro-batches per optimizer step (K). `accumulator`: how a sum grows (default `tf.add` into a new
   * tensor; `inPlaceGradAccumulator` of @kstar/kernels adds in place where the backend allows).
   */
  constructor(
    readonly micro: number,
    options: { accumulator?: GradAccumulator; maxNorm?: number } = {},
  ) {
    if (!Number.isInteger(micro) || micro < 1) {
      throw new InputError(
        `GradAccumulation: micro-batches per step must be an integer of at least 1 (got ${micro}): pass e.g. 2`,
      );
    }
    this.accumulator = options.accumulator ?? allocatingAccumulator;
    this.maxNorm = options.maxNorm;
  }

  /** The engine's `onGradient` option: names the parameter of the update that follows. */
  readonly onGradient = (name: string): void => {
    this.current = name;
  };

  /** The mean loss of the optimizer step whose last micro-batch has `lastLoss` (for a `SpikeGuard`). */
  meanLoss(lastLoss: number): number {
    return (this.lossSum + lastLoss) / this.micro;
  }

  /**
   * `inner`, with every update fed the accumulated mean gradient. Same name, state and hyper-parameters. Row-chunked
   * updates are turned off (the accumulated sum is whole), so parameters update whole.
   */
  wrap(inner: OptimizerPlugin): OptimizerPlugin {
    const wrapper = Object.create(inner) as OptimizerPlugin;
    Object.defineProperty(wrapper, 'rowChunks', { value: undefined });
    wrapper.describe = () => ({
      ...inner.describe(),
      gradAccum: this.micro,
      ...(this.maxNorm !== undefined ? { gradClip: this.maxNorm } : {}),
    });
    wrapper.update = (param, grad, state, step, part) => {
      // A tied parameter's parts (partial gradients) are summed by the optimizer: the earlier sum joins the first.
      const mean = this.meanGradient(this.current ?? '', grad, !part || part.first);
      try {
        inner.update(param, mean, state, step, part);
      } finally {
        mean.dispose();
      }
    };
    return wrapper;
  }

  /**
   * Under ZeRO (a `ShardingPlugin` such as @kstar/shard-zero's): `inner`, whose engine side reduces the accumulated mean gradient in place of the
   * last micro-batch's. Each rank sums its own rows' gradients over the K micro-batches without any communication;
   * the one reduction per step then averages (Σ_k g_k)/K over the ranks, which is the mean gradient of the K × B
   * global rows (the mean is linear). The optimizer itself stays unwrapped: it sees the reduced gradient.
   */
  wrapSharding(inner: ShardingPlugin): ShardingPlugin {
    const wrapper = Object.create(inner) as ShardingPlugin;
    wrapper.describe = () => ({ ...inner.describe(), gradAccum: this.micro });
    wrapper.attach = (ctx) => {
      const attached = inner.attach(ctx);
      const engineSide = Object.create(attached) as ShardedTraining;
      engineSide.consume = async (name, grad, step) => {
        const mean = this.meanGradient(name, grad, true);
        try {
          await attached.consume(name, mean, step);
        } finally {
          mean.dispose();
        }
      };
      // The engine hands a segment's gradients over as one bucket where the plugin takes buckets: same rule.
      if (attached.consumeBucket) {
        engineSide.consumeBucket = async (grads, step) => {
          const means = grads.map(([name, grad]) => [name, this.meanGradient(name, grad, true)] as const);
          try {
            await attached.consumeBucket!(means, step);
          } finally {
            for (const [, mean] of means) mean.dispose();
          }
        };
      }
      return engineSide;
    };
    return wrapper;
  }

  /**
   * What the update of `name` receives in place of `grad` (the last micro-batch's): (Σ earlier + grad)/K, or once the
   * sums are complete (clipping) the clipped Σ/K. `withSum`: false for later parts of a tied parameter (the first
   * part carried the sum). The caller disposes the result.
   */
  private meanGradient(name: string, grad: tf.Tensor, withSum: boolean): tf.Tensor {
    const earlier = withSum ? this.sums.get(name) : undefined;
    return tf.tidy(() => {
      if (!this.complete) return tf.mul(earlier ? tf.add(earlier, grad) : grad, 1 / this.micro);
      // The sum already holds this gradient: the first part carries it all, later parts add nothing.
      return earlier ? tf.mul(earlier, this.clipScale / this.micro) : tf.zerosLike(grad);
    });
  }

  /**
   * One optimizer step over `batches` (K micro-batches): gradients of all but the last, then `last` (the engine's
   * step, possibly clipped or planner-guarded) on the last one. The result's loss is the mean over the micro-batches.
   * The accumulated gradients are freed whether or not the step succeeds.
   */
  async step(
    engine: TrainingEngine,
    batches: readonly Batch[],
    last: (batch: Batch) => Promise<StepResult>,
  ): Promise<StepResult & { gradNorm?: number }> {
    this.clear();
    try {
      for (const batch of batches.slice(0, -1)) this.lossSum += await this.accumulate(engine, batch);
      if (this.maxNorm === undefined) {
        const r = await last(batches.at(-1)!);
        return { ...r, ...this.peaksWith(r), loss: this.meanLoss(r.loss) };
      }
      // Clipping: the last micro-batch's gradients join the sum first, so the norm is the whole step's.
      await this.accumulate(engine, batches.at(-1)!);
      const norm = await this.meanNorm();
      if (!Number.isFinite(norm)) {
        throw new TrainingError(
          engine.step + 1,
          `step ${engine.step + 1}: the global norm of the accumulated gradient is ${norm}: parameters were not updated; lower the learning rate or check the data`,
        );
      }
      this.clipScale = Math.min(1, this.maxNorm / (norm + 1e-6));
      this.complete = true;
      const r = await last(batches.at(-1)!);
      return { ...r, ...this.peaksWith(r), loss: this.meanLoss(r.loss), gradNorm: norm };
    } finally {
      this.clear();
    }
  }

  /**
   * Adds `batch`'s gradients to the sums; returns its loss. Measured in a ledger window of its own, as the engine
   * measures a step, so the step's reported peak covers every micro-batch (the sums are alive in all but the first).
   */
  private async accumulate(engine: TrainingEngine, batch: Batch): Promise<number> {
    engine.ledger.begin(engine.paramBytes() + engine.optimizerStateBytes());
    let result: Awaited<ReturnType<TrainingEngine['computeGradients']>>;
    try {
      result = await engine.computeGradients(batch);
    } finally {
      const w = engine.ledger.end();
      this.microPeaks = this.peaksWith({
        peakBytes: w.peakBytes,
        gradPeakBytes: w.gradPeakBytes,
        activationPeakBytes: w.activationPeakBytes,
        hostPeakBytes: w.hostPeakBytes,
      });
    }
    for (const [name, g] of result.grads) this.add(name, g);
    // Under ZeRO: the mean over ranks, as the engine's step reports its loss (every rank calls it, in order).
    return engine.sharded ? engine.sharded.mean(result.loss) : result.loss;
  }

  /** The larger of `r`'s peaks and the micro-batches' peaks, term by term. */
  private peaksWith(r: typeof this.microPeaks): typeof this.microPeaks {
    const m = this.microPeaks;
    return {
      peakBytes: Math.max(m.peakBytes, r.peakBytes),
      gradPeakBytes: Math.max(m.gradPeakBytes, r.gradPeakBytes),
      activationPeakBytes: Math.max(m.activationPeakBytes, r.activationPeakBytes),
      hostPeakBytes: Math.max(m.hostPeakBytes, r.hostPeakBytes),
    };
  }

  /** ‖Σg/K‖: the global L2 norm of the accumulated mean gradient. */
  private async meanNorm(): Promise<number> {
    const total = tf.tidy(() => tf.sqrt(tf.addN([...this.sums.values()].map((s) => tf.sum(tf.square(s))))));
    const value = (await total.data())[0]!;
    total.dispose();
    return value / this.micro;
  }

  private add(name: string, g: tf.Tensor): void {
    const sum = this.sums.get(name);
    if (!sum) {
      this.sums.set(name, g); // owned: computeGradients returns clones
      return;
    }
    const next = this.accumulator.add(sum, g);
    g.dispose();
    if (next !== sum) {
      sum.dispose();
      this.sums.set(name, next);
    }
  }

  private clear(): void {
    tf.dispose([...this.sums.values()]);
    this.sums.clear();
    this.lossSum = 0;
    this.current = undefined;
    this.complete = false;
    this.clipScale = 1;
    this.microPeaks = noPeaks();
  }
}

function noPeaks() {
  return { peakBytes: 0, gradPeakBytes: 0, activationPeakBytes: 0, hostPeakBytes: 0 };
}
