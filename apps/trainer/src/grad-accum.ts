import type { Batch, GradAccumulator, OptimizerPlugin, StepResult, TrainingEngine } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';

/**
 * `--grad-accum K`: one optimizer step over K micro-batches. The first K − 1 micro-batches only compute gradients
 * (summed per parameter); the last runs the engine's normal step, whose optimizer (wrapped by `wrap`) receives
 * `(Σ earlier gradients + this gradient) / K`: the gradient of the mean loss over the K × B rows, as one step on a
 * batch K times larger computes it. The step's loss is the mean of the micro-batch losses (equal-sized micro-batches:
 * the mean over all rows). Memory: one float32 gradient per parameter is kept between micro-batches.
 *
 * Checkpoints are written between optimizer steps only, so no micro-batch position needs saving: the data sampler's
 * state after `step × K` micro-batches resumes exactly.
 */
export class GradAccumulation {
  /** Σ of the earlier micro-batches' gradients, by parameter name. */
  private readonly sums = new Map<string, tf.Tensor>();
  /** Σ of the earlier micro-batches' losses. */
  private lossSum = 0;
  /** The parameter whose gradient the engine hands to the optimizer next (set by `onGradient`). */
  private current: string | undefined;

  constructor(
    readonly micro: number,
    private readonly accumulator: GradAccumulator,
  ) {}

  /** The engine's `onGradient` option: names the parameter of the update that follows. */
  readonly onGradient = (name: string): void => {
    this.current = name;
  };

  /** The mean loss of the optimizer step whose last micro-batch has `lastLoss` (for `--spike-guard`). */
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
    wrapper.describe = () => ({ ...inner.describe(), gradAccum: this.micro });
    wrapper.update = (param, grad, state, step, part) => {
      // A tied parameter's parts (partial gradients) are summed by the optimizer: the earlier sum joins the first.
      const earlier = !part || part.first ? this.sums.get(this.current ?? '') : undefined;
      const mean = tf.tidy(() => tf.mul(earlier ? tf.add(earlier, grad) : grad, 1 / this.micro));
      try {
        inner.update(param, mean, state, step, part);
      } finally {
        mean.dispose();
      }
    };
    return wrapper;
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
  ): Promise<StepResult> {
    this.clear();
    try {
      for (const batch of batches.slice(0, -1)) {
        const { loss, grads } = await engine.computeGradients(batch);
        this.lossSum += loss;
        for (const [name, g] of grads) this.add(name, g);
      }
      const r = await last(batches.at(-1)!);
      return { ...r, loss: this.meanLoss(r.loss) };
    } finally {
      this.clear();
    }
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
  }
}
