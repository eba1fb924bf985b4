import type * as tf from '@tensorflow/tfjs-core';

/** Bumped when a contract changes incompatibly; every plugin states the version it implements. */
export const SPECIFICATION_VERSION = 'v1' as const;
export type SpecificationVersion = typeof SPECIFICATION_VERSION;

export type PluginKind = 'optimizer' | 'activation' | 'master-weights' | 'collective' | 'observer';

/** The smallest thing a trainer is made of. A trainer is a list of plugins. */
export interface Plugin {
  readonly specificationVersion: SpecificationVersion;
  readonly kind: PluginKind;
  /** Short unique name, e.g. `adamw`, `checkpoint`. */
  readonly name: string;
  /** Hyper-parameters or settings, as written into reports. */
  describe(): Record<string, unknown>;
}

/** What an optimizer knows about a parameter when it creates its state. */
export interface ParamInfo {
  readonly name: string;
  readonly shape: readonly number[];
  /** Embedding-like weights (rows gathered by token id) may get special treatment (lazy rows, fp32 state). */
  readonly role: 'embedding' | 'matrix' | 'vector' | 'other';
}

/**
 * An optimizer's per-parameter state: named tensors it owns. `update` may replace entries (disposing
 * the old tensor) or write into them in place. The ledger counts the unique buffers behind them.
 */
export type OptimizerState = Record<string, tf.Tensor>;

export interface OptimizerPlugin extends Plugin {
  readonly kind: 'optimizer';
  /** Create the state for one parameter. Called once, before its first update. */
  init(param: ParamInfo): OptimizerState;
  /**
   * Update `param` from `grad` (same shape, float32). `step` counts from 1. Must not dispose `grad`
   * (the engine frees it) and must leave no new tensor alive except the state it owns.
   */
  update(param: tf.Variable, grad: tf.Tensor, state: OptimizerState, step: number, part?: GradientPart): void;
  /** Bytes of state `init` + `update` keep for a parameter of this shape (a prediction the tests hold to measurement). */
  stateBytes(shape: readonly number[], role?: ParamInfo['role']): number;
  /** True when the update needs every gradient of the step first (e.g. global-norm clipping): disables gradient release. */
  readonly needsAllGradients?: boolean;
  /** The learning rate the next updates use (schedules set it before each step). Absent: the optimizer has none. */
  learningRate?: number;
  /**
   * True when applying a tied parameter's partial gradients one after the other equals applying their sum (a linear
   * update such as SGD/LOMO without clipping by value). The engine then hands each part to `update` as soon as it
   * exists, with `part` set, instead of keeping a partial sum alive while the segments between the readers run.
   */
  readonly acceptsPartialGradients?: boolean;
  /** Row-chunked updates (`partitionedUpdate`, `EngineOptions.updateChunkBytes`): element-wise optimizers only. */
  readonly rowChunks?: RowChunkSpec;
}

/** Which part of a tied parameter's gradient an update receives (only with `acceptsPartialGradients`). */
export interface GradientPart {
  /** The first part of this step (terms applied once per step, e.g. weight decay, go here). */
  readonly first: boolean;
  /** The last part of this step. */
  readonly last: boolean;
}

/**
 * How an element-wise optimizer's update can run on row chunks of a parameter (see `partitionedUpdate`).
 */
export interface RowChunkSpec {
  /**
   * For each state entry, the parameter elements per state element, in flat (row-major) order: 1 for a moment of the
   * parameter's layout, 4 for four 8-bit codes packed per int32, B for one absmax per block of B. null: this state
   * cannot be chunked (the update then runs whole).
   */
  stateLayout(state: OptimizerState, shape: readonly number[]): Readonly<Record<string, number>> | null;
  /**
   * Bytes per parameter element of a chunk that the update itself holds at its peak (temporaries, and outputs the
   * profiler counts), NOT counting the chunk copies of the parameter, gradient and state the partition makes.
   */
  updateBytesPerElement(state: OptimizerState, shape: readonly number[]): number;
}

/** Sizes a plugin's prediction may depend on. */
export interface SegmentInfo {
  readonly index: number;
  readonly stageNames: readonly string[];
  readonly batch: number;
  readonly seq: number;
}

/**
 * A segment is a pure function of its input and its parameters. Activation strategies wrap it (later issues).
 */
export interface ActivationStrategy extends Plugin {
  readonly kind: 'activation';
  wrap(segment: SegmentFn, info: SegmentInfo): SegmentFn;
  predictBytes(info: SegmentInfo): number;
}

/** `(x, params) → y` for one segment. */
export type SegmentFn = (x: tf.Tensor, params: Readonly<Record<string, tf.Tensor>>) => tf.Tensor;

/** Collective communication over ranks (MPI, NCCL, or the single-process `local` one). */
export interface Collective extends Plugin {
  readonly kind: 'collective';
  readonly rank: number;
  readonly size: number;
  allReduce(x: tf.Tensor, op?: 'sum' | 'mean'): Promise<tf.Tensor>;
  reduceScatter(x: tf.Tensor): Promise<tf.Tensor>;
  allGather(x: tf.Tensor): Promise<tf.Tensor>;
  broadcast(x: tf.Tensor, root: number): Promise<tf.Tensor>;
  barrier(): Promise<void>;
}

export type AnyPlugin =
  | OptimizerPlugin
  | ActivationStrategy
  | Collective
  | (Plugin & { kind: 'master-weights' | 'observer' });
