import type * as tf from '@tensorflow/tfjs-core';
import type { ShardingPlugin } from './sharding.ts';

/** Bumped when a contract changes incompatibly; every plugin states the version it implements. */
export const SPECIFICATION_VERSION = 'v1' as const;
export type SpecificationVersion = typeof SPECIFICATION_VERSION;

export type PluginKind =
  | 'optimizer'
  | 'activation'
  | 'master-weights'
  | 'collective'
  | 'sharding'
  | 'observer';

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
  /**
   * Awaited by the engine after each update, before its next work (optional). For state that moves asynchronously
   * (host offload on WebGPU): lets earlier copies land, so that they do not pile up on the device within a step.
   * Unsharded engines only: ZeRO's sharded updates (`@kstar/shard-zero`) do not call it.
   */
  afterUpdate?(): Promise<void> | undefined;
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
 * Operations inside a model's stages that an activation strategy may replace (e.g. MsT's chunked versions). A
 * model calls the replacement when one is given and its own implementation otherwise; a replacement must compute
 * the same function (same value, same gradients within float32 rounding).
 */
export interface ModelOps {
  /** Causal self-attention core: q, k, v [B, H, T, hd] → softmax(mask(q·kᵀ·scale))·v [B, H, T, hd]. */
  attention?(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, scale: number): tf.Tensor;
  /**
   * Position-wise MLP: x [N, D] → act(x·wfc + bfc)·wproj + bproj [N, D]. `act` is the model's differentiable
   * element-wise activation (e.g. GELU with its custom gradient).
   */
  mlp?(
    x: tf.Tensor,
    wfc: tf.Tensor,
    bfc: tf.Tensor,
    wproj: tf.Tensor,
    bproj: tf.Tensor,
    act: (h: tf.Tensor) => tf.Tensor,
  ): tf.Tensor;
  /**
   * LM head and loss: mean over N rows of the cross-entropy of logits h·wᵀ (h [N, D], w [V, D]) against int32
   * targets [N]. A replacement must never need the whole [N, V] logits at once to be worth it.
   */
  linearCrossEntropy?(h: tf.Tensor, w: tf.Tensor, targets: tf.Tensor): tf.Scalar;
}

/** A segment's saved input, kept between the forward pass and that segment's recompute (possibly compressed). */
export interface SavedTensor {
  /** Bytes the saved form holds (what the ledger should see). */
  readonly bytes: number;
  /** The float32 tensor to recompute from; the caller disposes it. */
  decode(): tf.Tensor;
  dispose(): void;
  /** Asynchronous stores (host offload): resolves when the store is done and the device copy is freed. */
  settled?(): Promise<void>;
  /** Asynchronous stores: start bringing the data back to the device ahead of `decode`. */
  prefetch?(): void;
}

/** How segment inputs are stored between forward and backward (activation compression). */
export interface SavedTensorCodec {
  /** Store `x` (float32 [B, T, D]); must not dispose `x`. */
  encode(x: tf.Tensor): SavedTensor;
  /** Bytes `encode` keeps for a float32 tensor of this shape (a prediction the tests hold to measurement). */
  savedBytes(shape: readonly number[]): number;
}

/** What an activation strategy sees of a model's stages when it plans segments. */
export interface StageSummary {
  readonly name: string;
  readonly params: readonly string[];
}

/**
 * An activation strategy shrinks the activation term: by choosing segment boundaries (checkpointing: only each
 * segment's input is kept, the rest recomputed), by replacing model ops with chunked ones (MsT), or by storing
 * the saved segment inputs compressed. Each part is optional; the engine composes several strategies as long as
 * no two provide the same part.
 */
export interface ActivationStrategy extends Plugin {
  readonly kind: 'activation';
  /** Segment plan over the model's stages: consecutive groups of stage indices. Requires segmented mode. */
  planSegments?(stages: readonly StageSummary[]): number[][];
  /** Replacement model ops. */
  readonly ops?: ModelOps;
  /** Storage of saved segment inputs. Requires segmented mode. */
  readonly codec?: SavedTensorCodec;
  /** Predicted activation bytes this strategy keeps or adds for one segment (see each package's README). */
  predictBytes?(info: SegmentInfo): number;
}

/**
 * Collective communication over ranks (MPI, NCCL, or a single-process one). Every rank calls the same operations in
 * the same order with tensors of the same shape and dtype (float32 or int32). Results are new tensors the caller
 * owns; inputs are kept.
 */
export interface Collective extends Plugin {
  readonly kind: 'collective';
  readonly rank: number;
  readonly size: number;
  /** Element-wise sum (or mean) over ranks, shaped like `x`. */
  allReduce(x: tf.Tensor, op?: 'sum' | 'mean'): Promise<tf.Tensor>;
  /**
   * Element-wise sum (or mean) over ranks, shaped like `x`, delivered to `root` only (the other ranks get null): half
   * an all-reduce's traffic, for results that one rank alone needs (a whole-tensor owner's gradient).
   */
  reduce(x: tf.Tensor, root: number, op?: 'sum' | 'mean'): Promise<tf.Tensor | null>;
  /**
   * Element-wise sum (or mean) over ranks of the flat `x` (size divisible by `size`), of which this rank receives
   * chunk `rank`: flat [x.size / size].
   */
  reduceScatter(x: tf.Tensor, op?: 'sum' | 'mean'): Promise<tf.Tensor>;
  /** Every rank's flat `x` (same size on every rank), concatenated in rank order: flat [size · x.size]. */
  allGather(x: tf.Tensor): Promise<tf.Tensor>;
  /** `root`'s `x` on every rank (the others pass a tensor of the same shape and dtype). */
  broadcast(x: tf.Tensor, root: number): Promise<tf.Tensor>;
  barrier(): Promise<void>;
  /*
   * Bucketed forms: one operation over several tensors of one dtype (a segment's gradients or parameters), with their
   * host read-backs awaited together, one host buffer and one message per bucket (split only past the message limit),
   * and the results uploaded at once. Same results and bytes-sent count as the per-tensor calls, in `xs`' order.
   */
  /** `allReduce` of each tensor. */
  allReduceBucket(xs: readonly tf.Tensor[], op?: 'sum' | 'mean'): Promise<tf.Tensor[]>;
  /** `reduce` of each tensor to `root` (the other ranks get an empty array). */
  reduceBucket(xs: readonly tf.Tensor[], root: number, op?: 'sum' | 'mean'): Promise<tf.Tensor[]>;
  /**
   * `reduceScatter` of each flat `xs[i]` read as zero-padded to `padded[i]` elements (a multiple of `size`, ≥ its
   * size): this rank's chunk of each, flat [padded[i] / size].
   */
  reduceScatterBucket(
    xs: readonly tf.Tensor[],
    padded: readonly number[],
    op?: 'sum' | 'mean',
  ): Promise<tf.Tensor[]>;
  /** `allGather` of each flat `xs[i]` read as zero-padded to `pieces[i]` elements: flat [size · pieces[i]] each. */
  allGatherBucket(xs: readonly tf.Tensor[], pieces: readonly number[]): Promise<tf.Tensor[]>;
  /** `broadcast` of each tensor from `root`. */
  broadcastBucket(xs: readonly tf.Tensor[], root: number): Promise<tf.Tensor[]>;
  /**
   * Bytes this rank has sent since it started, counted from message sizes with the ring algorithms' volumes
   * (all-reduce 2·(N−1)/N·n, reduce-scatter and all-gather (N−1)/N·n of the full n, reduce and broadcast (N−1)/N·n).
   */
  bytesSent(): number;
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
  | ShardingPlugin
  | MasterWeightsPlugin
  | (Plugin & { kind: 'observer' });
