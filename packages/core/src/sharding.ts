import type * as tf from '@tensorflow/tfjs-core';
import type {
  Collective,
  MasterWeightsPlugin,
  OptimizerPlugin,
  OptimizerState,
  Plugin,
} from './contracts.ts';
import type { MemoryLedger } from './ledger.ts';
import type { ParamAccess } from './master-weights.ts';
import type { StagedModel } from './model.ts';
import type { PartitionOptions } from './partition.ts';

/** ZeRO stages: 0 plain data parallelism, 1 + optimizer state, 2 + gradients, 3 + parameters partitioned. */
export type ZeroStage = 0 | 1 | 2 | 3;

/** What the engine hands a sharding plugin once, when it is built. */
export interface ShardingContext {
  readonly model: StagedModel;
  /** Parameters some stage reads (the trained ones), by name. */
  readonly trained: ReadonlyMap<string, tf.Variable>;
  readonly optimizer: OptimizerPlugin;
  readonly masterWeights?: MasterWeightsPlugin;
  /** Gradient partitioning options of the engine (row-chunked updates), if any. */
  readonly updatePartition?: PartitionOptions;
  readonly ledger: MemoryLedger;
}

/**
 * The engine's side of data-parallel sharding. It replaces the engine's parameter access (stage 3 gathers the
 * parameters a segment reads and frees them after), its gradient consumer (reduce over ranks, then update what this
 * rank owns) and its optimizer state (this rank's part only). The engine calls, in this order for a segment:
 * `gather(names)` → `read(names)` → forward or recompute → `release(params)`; and `consume` for each complete gradient.
 */
export interface ShardedTraining extends ParamAccess {
  /** Makes `names` readable by `read` (stage 3: all-gathers them; other stages: nothing to do). */
  gather(names: readonly string[]): Promise<void>;
  /**
   * A complete gradient of `name` over this rank's rows (the mean over its rows): reduces it over ranks to the mean
   * of the global batch and updates what this rank owns. Must neither keep nor dispose `grad`.
   */
  consume(name: string, grad: tf.Tensor, step: number): Promise<void>;
  /**
   * Optional: `consume` of several complete gradients at once (a segment's, released together), so their reductions
   * go out as one bucket. Same contract per gradient as `consume`.
   */
  consumeBucket?(grads: ReadonlyArray<readonly [string, tf.Tensor]>, step: number): Promise<void>;
  /** The mean over ranks of a per-rank value (the step's loss). */
  mean(value: number): Promise<number>;
  /** This rank's optimizer state tensors (the ledger counts their unique buffers). */
  stateTensors(): tf.Tensor[];
  /** This rank's optimizer state for `name` (its shard, or undefined where another rank owns it). */
  stateOf(name: string): OptimizerState | undefined;
  dispose(): void;
}

/** A sharding plugin (`@kstar/shard-zero`): decides what each rank owns and moves the rest over a collective. */
export interface ShardingPlugin extends Plugin {
  readonly kind: 'sharding';
  readonly stage: ZeroStage;
  readonly collective: Collective;
  /** Called once by the engine's constructor. */
  attach(ctx: ShardingContext): ShardedTraining;
}
