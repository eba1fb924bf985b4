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
  update(param: tf.Variable, grad: tf.Tensor, state: OptimizerState, step: number): void;
  /** Bytes of state `init` + `update` keep for a parameter of this shape (a prediction the tests hold to measurement). */
  stateBytes(shape: readonly number[], role?: ParamInfo['role']): number;
  /** True when the update needs every gradient of the step first (e.g. global-norm clipping): disables gradient release. */
  readonly needsAllGradients?: boolean;
  /** The learning rate the next updates use (schedules set it before each step). Absent: the optimizer has none. */
  learningRate?: number;
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

/**
 * How trained weights are stored between steps (e.g. 24-bit split weights). The engine hands it the model's float32
 * variables once (`adopt`, which frees their float32 buffers) and from then on reads parameters through it:
 * `materialize` for forward/backward (new float32 tensors alive only while one segment runs), `update` for the
 * optimizer (a temporary float32 variable holding the full stored precision, written back after `fn`).
 */
export interface MasterWeightsPlugin extends Plugin {
  readonly kind: 'master-weights';
  /** Takes over these variables (name → variable): stores them, then disposes them. Names already held are skipped. */
  adopt(variables: ReadonlyMap<string, tf.Variable>): void;
  /** New float32 tensors (the values forward/backward read), shaped like the variables. The caller disposes them. */
  materialize(names: readonly string[]): Record<string, tf.Tensor>;
  /**
   * Runs `fn` on a temporary float32 variable (named like the adopted one) holding the stored value of `name`,
   * stores the variable's value afterwards and disposes it.
   */
  update(name: string, fn: (param: tf.Variable) => void): void;
  /** The persistent storage tensors (the ledger counts their unique buffers). */
  tensors(): tf.Tensor[];
  /** Bytes the format keeps for a parameter of this shape (a prediction the tests hold to measurement). */
  bytesFor(shape: readonly number[]): number;
  /** Frees the storage. */
  dispose(): void;
}

export type AnyPlugin =
  | OptimizerPlugin
  | ActivationStrategy
  | Collective
  | MasterWeightsPlugin
  | (Plugin & { kind: 'observer' });
