import * as tf from '@tensorflow/tfjs-core';
import { activationMode } from './activation-mode.ts';
import { composeActivations } from './activations.ts';
import type {
  ActivationStrategy,
  GradientPart,
  MasterWeightsPlugin,
  ModelOps,
  OptimizerPlugin,
  OptimizerState,
  SavedTensor,
  SavedTensorCodec,
} from './contracts.ts';
import { InputError, PluginConflictError, TrainingError } from './errors.ts';
import { MemoryLedger, uniqueBufferBytes, type WindowStats } from './ledger.ts';
import { materializedGrads, type ParamAccess, paramAccess } from './master-weights.ts';
import type { Batch, StagedModel } from './model.ts';
import { type PartitionOptions, partitionedUpdate } from './partition.ts';
import { segmentReads } from './segment-reads.ts';
import type { ShardedTraining, ShardingPlugin } from './sharding.ts';

export type EngineMode = 'full' | 'segmented';

export interface EngineOptions {
  optimizer: OptimizerPlugin;
  /** `full`: one `tf.variableGrads` over the whole model (fastest, hungriest). `segmented`: recompute per segment. */
  mode?: EngineMode;
  /**
   * Segmented mode: consecutive groups of stage indices, e.g. `[[0], [1, 2], [3, 4], [5]]`. Default: one stage a
   * segment. Every stage must appear exactly once, in order.
   */
  segments?: number[][];
  /**
   * Segmented mode: update each parameter (and free its gradient) as soon as its gradient is complete, instead of
   * after the whole backward pass. Default true, unless the optimizer `needsAllGradients`.
   */
  gradientRelease?: boolean;
  /** Shared ledger (the trainer attaches one before building the model); one is made if absent. */
  ledger?: MemoryLedger;
  /** Called with each complete gradient (each part, with `partialGradients`) just before the optimizer consumes it (observers, tests). Must not keep it. */
  onGradient?: (name: string, grad: tf.Tensor) => void;
  /**
   * How a tied parameter's partial gradients are summed. The default allocates the sum (`tf.add`), so for a moment the
   * old sum, the new part and the new sum are alive; an in-place accumulator (from `@kstar/kernels`) adds into the
   * old sum and returns it.
   */
  gradAccumulator?: GradAccumulator;
  /**
   * Activation strategies: a segment plan (checkpointing), model-op replacements (MsT), a codec for saved segment
   * inputs (compression). A plan or a codec needs segmented mode; an explicit `segments` overrides no plan.
   */
  activations?: readonly ActivationStrategy[];
  /**
   * Stores the trained weights in the plugin's format (e.g. 24-bit split) instead of the model's float32 variables,
   * which it adopts and frees; forward/backward read per-segment materialized copies. Absent: float32 variables.
   */
  masterWeights?: MasterWeightsPlugin;
  /** Steps already taken (resuming from a checkpoint): the next update is step `initialStep + 1`. Default 0. */
  initialStep?: number;
  /**
   * Gradient partitioning: update each parameter in row chunks whose copies and temporaries stay within
   * `chunkBytes` (see `partitionedUpdate`; optimizers without `rowChunks` update whole); pass `@kstar/kernels`'
   * `sliceWriter` as `writer`. Default: off.
   */
  updatePartition?: PartitionOptions;
  /**
   * Called with each step's (finite) loss before any parameter is updated; `true` skips every update of that step
   * (its gradients are still computed, then freed) and the step's result says `skipped`. A loss-spike guard uses it.
   */
  skipUpdate?: (loss: number, step: number) => boolean;
  /**
   * Segmented mode: the codec of each segment's saved input, by segment index (a planner's per-segment choice, e.g.
   * compressed here, offloaded there, plain elsewhere). `undefined` entries store the input as is. Conflicts with an
   * activation strategy's codec.
   */
  segmentCodecs?: readonly (SavedTensorCodec | undefined)[];
  /**
   * Called before each segment runs (`forward`, then `backward` for its recompute; full-graph mode: segment 0,
   * `forward`). Observers and fault injection (a test or the trainer throwing an out-of-memory error): a throw
   * before the step's first update leaves the parameters and optimizer state as they were (`updatesThisStep` 0).
   */
  onSegment?: (phase: 'forward' | 'backward', segment: number, step: number) => void;
  /**
   * Data-parallel sharding (ZeRO, `@kstar/shard-zero`): the plugin takes over parameter access, gradient reduction
   * and the optimizer state (this rank's part only); the step's loss is the mean over ranks. Tied parameters' parts
   * are summed before reduction (no partial gradients).
   */
  sharding?: ShardingPlugin;
}

/** What `TrainingEngine.replan` may change between steps: the activation side of the options. */
export type ReplanOptions = Pick<EngineOptions, 'mode' | 'segments' | 'activations' | 'segmentCodecs'>;

export interface GradAccumulator {
  /** True when `add` writes into `acc` and returns it. */
  readonly inPlace: boolean;
  /** Returns the sum. Must not dispose its inputs. */
  add(acc: tf.Tensor, g: tf.Tensor): tf.Tensor;
}

const allocatingAccumulator: GradAccumulator = { inPlace: false, add: (acc, g) => tf.add(acc, g) };

export interface StepResult {
  step: number;
  loss: number;
  /** Unique buffer bytes of the model's variables. */
  paramBytes: number;
  /** Unique buffer bytes of the optimizer's state after the step. */
  optimizerStateBytes: number;
  /** Peak of gradient bytes alive at once during the step. */
  gradPeakBytes: number;
  /** Peak of bytes beyond params, optimizer state and gradients: activations and temporaries. */
  activationPeakBytes: number;
  /** Peak of all unique buffer bytes during the step. */
  peakBytes: number;
  /** `skipUpdate` skipped this step's updates: the loss is measured, the parameters are unchanged. */
  skipped?: boolean;
  /** Peak of host-memory bytes plugins declared during the step (offloaded data), apart from `peakBytes`. */
  hostPeakBytes: number;
}

/**
 * The training engine. Full-graph mode is the baseline; segmented mode keeps only each segment's input during the
 * forward pass, then walks segments last to first, recomputes each under `tf.valueAndGrads` with the upstream
 * gradient, and releases each parameter's gradient to the optimizer as soon as every segment that reads the
 * parameter has been differentiated (gradient release).
 */
export class TrainingEngine {
  readonly model: StagedModel;
  readonly optimizer: OptimizerPlugin;
  /** The activation side of the options, as `replan` last set it (see `configure`). */
  private current!: {
    mode: EngineMode;
    segments: readonly (readonly number[])[];
    gradientRelease: boolean;
    partialGradients: boolean;
    ops: ModelOps;
  };
  readonly ledger: MemoryLedger;
  readonly masterWeights?: MasterWeightsPlugin;
  /** Reads and updates parameters: the float32 variables, through `masterWeights`, or through `sharding`. */
  private readonly params: ParamAccess;
  /** The sharding plugin's side of the step, when training data-parallel. */
  readonly sharded?: ShardedTraining;
  readonly updatePartition: PartitionOptions | undefined;
  private readonly states = new Map<string, OptimizerState>();
  /** Segment index → names of the parameters its stages read (deduplicated). */
  private segmentParams: string[][] = [];
  /** Parameter name → number of segments that read it. */
  private useCount = new Map<string, number>();
  private readonly onGradient: EngineOptions['onGradient'];
  private readonly skipUpdate: EngineOptions['skipUpdate'];
  /** Inside `trainStep` (only its losses go to `skipUpdate`), and whether its updates are skipped. */
  private guarding = false;
  private skipping = false;
  private readonly accumulator: GradAccumulator;
  /** Variables some stage reads (the ones trained), by parameter name. */
  private readonly trainedVariables = new Map<string, tf.Variable>();
  /** tf.Variable name (the key of `variableGrads`' result) → model parameter name. */
  private readonly paramNameOf = new Map<string, string>();
  private codecs: (SavedTensorCodec | undefined)[] = [];
  private readonly onSegment: EngineOptions['onSegment'];
  private readonly gradientReleaseOption: boolean | undefined;
  private readonly shardingOn: boolean;
  private stepCount = 0;
  private updates = 0;

  constructor(model: StagedModel, options: EngineOptions) {
    this.model = model;
    this.optimizer = options.optimizer;
    if (options.gradientRelease && this.optimizer.needsAllGradients) {
      throw new PluginConflictError(
        `optimizer '${this.optimizer.name}' needs all gradients of a step before it updates, so gradient release cannot be on: turn gradientRelease off`,
      );
    }
    this.gradientReleaseOption = options.gradientRelease;
    this.shardingOn = options.sharding !== undefined;
    this.updatePartition = options.updatePartition;
    const cb = this.updatePartition?.chunkBytes;
    if (cb !== undefined && !(Number.isInteger(cb) && cb > 0)) {
      throw new InputError(
        `updatePartition.chunkBytes = ${cb} is invalid: pass a positive integer number of bytes`,
      );
    }
    this.ledger = options.ledger ?? new MemoryLedger();
    this.onGradient = options.onGradient;
    this.skipUpdate = options.skipUpdate;
    this.onSegment = options.onSegment;
    this.accumulator = options.gradAccumulator ?? allocatingAccumulator;
    this.configure(options);
    for (const [name, v] of model.variables) {
      this.paramNameOf.set(v.name, name);
      if (this.useCount.has(name)) this.trainedVariables.set(name, v);
    }
    this.ledger.adopt(model.variables.values());
    if (options.masterWeights) this.masterWeights = options.masterWeights;
    if (options.sharding) {
      this.sharded = options.sharding.attach({
        model,
        trained: this.trainedVariables,
        optimizer: this.optimizer,
        ledger: this.ledger,
        ...(options.masterWeights ? { masterWeights: options.masterWeights } : {}),
        ...(this.updatePartition ? { updatePartition: this.updatePartition } : {}),
      });
      this.params = this.sharded;
    } else {
      this.params = paramAccess(model.variables, this.trainedVariables, options.masterWeights);
    }
    const initialStep = options.initialStep ?? 0;
    if (!(Number.isInteger(initialStep) && initialStep >= 0)) {
      throw new InputError(
        `initialStep = ${initialStep} is invalid: it must be an integer ≥ 0 (steps already taken)`,
      );
    }
    this.stepCount = initialStep;
    // Optimizer state is created up front so the ledger sees it from the first step (sharded: by the plugin).
    if (this.sharded) return;
    for (const name of model.variables.keys()) {
      if (!this.useCount.has(name)) continue; // a variable no stage reads gets no update
      const state = this.optimizer.init(model.paramInfo(name));
      this.ledger.adopt(Object.values(state));
      this.states.set(name, state);
    }
  }

  /**
   * Mode, segments, activation strategies and per-segment codecs (the activation side of the options), checked and
   * applied. The set of trained parameters must not change (their optimizer state is kept).
   */
  private configure(options: ReplanOptions): void {
    const model = this.model;
    const requested = options.mode ?? 'full';
    if (requested !== 'full' && requested !== 'segmented') {
      throw new InputError(`mode '${String(requested)}' is not a training mode: use 'full' or 'segmented'`);
    }
    const n = model.stages.length;
    const acts = composeActivations(options.activations ?? [], model.stages);
    // Per-segment codecs recompute segments as a strategy's codec does.
    const codecs = options.segmentCodecs?.find((c) => c);
    const mode = activationMode(
      [...(options.activations ?? []), ...(codecs ? [{ name: 'segmentCodecs', codec: codecs }] : [])],
      requested,
    );
    if (acts.plan && options.segments) {
      throw new PluginConflictError(
        `activation strategy '${acts.planBy}' plans the segments and so does the 'segments' option: keep one of them`,
      );
    }
    const segments = options.segments ?? acts.plan ?? model.stages.map((_, i) => [i]);
    checkSegments(segments, n);
    if (acts.codec && options.segmentCodecs) {
      throw new PluginConflictError(
        `activation strategy '${acts.codecBy}' stores every saved input and so does the 'segmentCodecs' option: keep one of them`,
      );
    }
    if (options.segmentCodecs && options.segmentCodecs.length !== segments.length) {
      throw new InputError(
        `segmentCodecs has ${options.segmentCodecs.length} entries for ${segments.length} segments: give one per segment (undefined: stored as is)`,
      );
    }
    const { segmentParams, useCount } = segmentReads(model.stages, segments);
    for (const name of useCount.keys()) {
      if (!model.variables.has(name)) {
        throw new InputError(`a stage reads parameter '${name}', which the model does not define`);
      }
    }
    if (this.useCount.size > 0 && [...useCount.keys()].some((k) => !this.useCount.has(k))) {
      throw new InputError(
        'replan: the new segments read parameters the old ones did not: keep the same model',
      );
    }
    this.codecs = segments.map((_, s) => options.segmentCodecs?.[s] ?? acts.codec);
    this.segmentParams = segmentParams;
    this.useCount = useCount;
    const gradientRelease =
      mode === 'segmented' && (this.gradientReleaseOption ?? !this.optimizer.needsAllGradients);
    this.current = {
      mode,
      segments,
      gradientRelease,
      // Sharded runs sum a tied parameter's parts before reducing them (no partial gradients).
      partialGradients:
        gradientRelease && this.optimizer.acceptsPartialGradients === true && !this.shardingOn,
      ops: acts.ops,
    };
  }

  get mode(): EngineMode {
    return this.current.mode;
  }

  get segments(): readonly (readonly number[])[] {
    return this.current.segments;
  }

  /** Segmented mode: each parameter is updated (and its gradient freed) as soon as its gradient is complete. */
  get gradientRelease(): boolean {
    return this.current.gradientRelease;
  }

  /** Tied parameters' partial gradients go to the optimizer one by one (it `acceptsPartialGradients`, with release). */
  get partialGradients(): boolean {
    return this.current.partialGradients;
  }

  /** Model-op replacements from the activation strategies, passed to every stage. */
  get ops(): ModelOps {
    return this.current.ops;
  }

  /**
   * Change the activation side of the options between steps (a planner's new plan: other segments, strategies or
   * codecs, or another mode). Optimizer state, parameters and the step count are kept, so training continues
   * exactly as an engine built with these options would.
   */
  replan(options: ReplanOptions): void {
    this.configure(options);
  }

  /** Parameter updates applied in the current (or last) step: 0 after a step that failed before its first update. */
  get updatesThisStep(): number {
    return this.updates;
  }

  /** Steps taken so far. */
  get step(): number {
    return this.stepCount;
  }

  /** The optimizer state of one parameter (for checkpoints and tests). */
  stateOf(name: string): OptimizerState | undefined {
    return this.sharded ? this.sharded.stateOf(name) : this.states.get(name);
  }

  /**
   * Replaces the optimizer state of one parameter (restoring a checkpoint): the old tensors are disposed and the new
   * record is owned by the engine. A new record object, so plugins that key host-side facts by the record (lazy
   * Adagrad's touched-row count) recompute them from its tensors.
   */
  setStateOf(name: string, state: OptimizerState): void {
    const old = this.states.get(name);
    if (!old) {
      throw new InputError(
        `no optimizer state for parameter '${name}' (known: ${[...this.states.keys()].slice(0, 4).join(', ')}…): restore a state of this model`,
      );
    }
    const keep = new Set(Object.values(state));
    tf.dispose(Object.values(old).filter((t) => !keep.has(t)));
    this.ledger.adopt(Object.values(state));
    this.states.set(name, state);
  }

  /** Names of the parameters that have optimizer state (the trained ones), in model order. */
  stateNames(): string[] {
    return [...this.states.keys()];
  }

  /** Unique buffer bytes of the model's variables. */
  paramBytes(): number {
    return this.params.bytes();
  }

  /** Unique buffer bytes of all optimizer state. */
  optimizerStateBytes(): number {
    if (this.sharded) return uniqueBufferBytes(this.sharded.stateTensors());
    const all: tf.Tensor[] = [];
    for (const s of this.states.values()) all.push(...Object.values(s));
    return uniqueBufferBytes(all);
  }

  /**
   * Predicted peak of gradient bytes alive during a step, from the segment plan alone: full-graph mode (or no
   * release) holds every gradient at once; with release, the backward walk is simulated: a segment's gradients
   * appear together, a tied parameter's partial gradient waits for its last reader (its accumulation briefly
   * holds the old sum, the new part and the new sum), and a complete gradient is freed after its update. With
   * `partialGradients`, every part is applied and freed at once, so nothing waits.
   */
  predictGradPeakBytes(): number {
    const bytes = (n: string) => 4 * this.model.variables.get(n)!.size;
    if (this.mode === 'full') {
      let all = 0;
      for (const n of this.useCount.keys()) all += bytes(n);
      return all;
    }
    const remaining = new Map(this.useCount);
    const pending = new Set<string>();
    let alive = 0;
    let peak = 0;
    for (let s = this.segments.length - 1; s >= 0; s--) {
      const names = this.segmentParams[s]!;
      let fresh = 0;
      for (const n of names) fresh += bytes(n);
      let accumulating = 0;
      if (!this.accumulator.inPlace && !this.partialGradients)
        for (const n of names) if (pending.has(n)) accumulating = Math.max(accumulating, bytes(n));
      peak = Math.max(peak, alive + fresh + accumulating);
      for (const n of names) {
        const left = remaining.get(n)! - 1;
        remaining.set(n, left);
        if (pending.has(n)) alive -= bytes(n); // the old partial sum is replaced by the new one
        if ((left === 0 && this.gradientRelease) || this.partialGradients) {
          pending.delete(n); // updated and freed at once
        } else {
          pending.add(n);
          alive += bytes(n);
        }
      }
    }
    return peak;
  }

  /** One training step: forward, backward, optimizer updates. Returns the loss and the step's measured memory. */
  async trainStep(batch: Batch): Promise<StepResult> {
    const step = this.stepCount + 1;
    const paramBytes = this.paramBytes();
    const stateBytes = this.optimizerStateBytes();
    this.updates = 0;
    this.ledger.begin(paramBytes + stateBytes);
    this.skipping = false;
    this.guarding = true;
    let loss: number;
    let stats: WindowStats;
    try {
      // A sharding plugin that takes buckets gets a segment's released gradients at once (one message per bucket).
      const bucket = this.sharded?.consumeBucket
        ? (grads: Array<[string, tf.Tensor]>) => this.applyBucket(grads, step)
        : undefined;
      loss =
        this.mode === 'full'
          ? await this.fullGraph(batch, step, (name, g) => this.apply(name, g, step), bucket)
          : await this.segmented(
              batch,
              step,
              (name, g, part) => this.apply(name, g, step, part),
              this.gradientRelease,
              this.partialGradients,
              bucket,
            );
      if (this.sharded) loss = await this.sharded.mean(loss);
    } finally {
      // Closed even when the step throws, so the next step opens a fresh window.
      stats = this.ledger.end();
      this.guarding = false;
    }
    this.stepCount = step;
    return {
      step,
      loss,
      paramBytes,
      optimizerStateBytes: this.optimizerStateBytes(),
      gradPeakBytes: stats.gradPeakBytes,
      activationPeakBytes: stats.activationPeakBytes,
      peakBytes: stats.peakBytes,
      ...(this.skipping ? { skipped: true } : {}),
      hostPeakBytes: stats.hostPeakBytes,
    };
  }

  /**
   * Loss and gradients without an update (tests, gradient checks). The caller owns and disposes the returned tensors.
   */
  async computeGradients(batch: Batch): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
    const grads = new Map<string, tf.Tensor>();
    const keep = (name: string, g: tf.Tensor) => {
      grads.set(name, g.clone());
      return undefined;
    };
    const loss =
      this.mode === 'full'
        ? await this.fullGraph(batch, this.stepCount + 1, keep)
        : await this.segmented(batch, this.stepCount + 1, keep, true);
    return { loss, grads };
  }

  /** Mean loss on a batch, forward only. */
  async evaluate(batch: Batch): Promise<number> {
    let loss: tf.Tensor;
    if (this.sharded) {
      // Segment by segment, so ZeRO-3 never gathers more than one segment's parameters.
      let x: tf.Tensor = batch.inputs;
      for (let s = 0; s < this.segments.length; s++) {
        const names = this.segmentParams[s]!;
        await this.sharded.gather(names);
        const params = this.params.read(names);
        let y: tf.Tensor;
        try {
          y = tf.tidy(() => {
            let h = x;
            for (const i of this.segments[s]!) h = this.model.stages[i]!.forward(h, params, batch, this.ops);
            return h;
          });
        } finally {
          this.params.release(params);
        }
        if (s > 0) x.dispose();
        x = y;
      }
      loss = x;
    } else {
      const params = this.params.read([...this.trainedVariables.keys()]);
      try {
        loss = tf.tidy(() => this.forwardAll(batch, params));
      } finally {
        this.params.release(params);
      }
    }
    const value = (await loss.data())[0]!;
    loss.dispose();
    return this.sharded ? this.sharded.mean(value) : value;
  }

  /** Dispose the optimizer state (the model's variables belong to the model). */
  dispose(): void {
    this.sharded?.dispose();
    for (const s of this.states.values()) tf.dispose(Object.values(s));
    this.states.clear();
  }

  private variableRecord(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.model.variables);
  }

  private forwardAll(batch: Batch, params: Record<string, tf.Tensor>): tf.Tensor {
    let x: tf.Tensor = batch.inputs;
    for (const stage of this.model.stages) x = stage.forward(x, params, batch, this.ops);
    return x;
  }

  private apply(name: string, grad: tf.Tensor, step: number, part?: GradientPart): undefined | Promise<void> {
    if (this.skipping) return; // the caller frees the gradient as usual
    this.onGradient?.(name, grad);
    this.updates++;
    if (this.sharded) return this.sharded.consume(name, grad, step);
    const state = this.states.get(name)!;
    this.params.update(name, (variable) => {
      if (part) this.optimizer.update(variable, grad, state, step, part);
      else if (this.updatePartition)
        partitionedUpdate(this.optimizer, variable, grad, state, step, this.updatePartition);
      else this.optimizer.update(variable, grad, state, step);
    });
    return this.optimizer.afterUpdate?.();
  }

  /** `apply` of several complete gradients, handed to the sharding plugin as one bucket. */
  private async applyBucket(grads: Array<[string, tf.Tensor]>, step: number): Promise<void> {
    if (this.skipping || grads.length === 0) return;
    for (const [name, g] of grads) this.onGradient?.(name, g);
    this.updates += grads.length;
    await this.sharded!.consumeBucket!(grads, step);
  }

  /** Baseline: one `tf.variableGrads` over the whole model, then every update (one bucket when `bucket` is given). */
  private async fullGraph(
    batch: Batch,
    step: number,
    consume: (name: string, g: tf.Tensor) => undefined | Promise<void>,
    bucket?: (grads: Array<[string, tf.Tensor]>) => Promise<void>,
  ): Promise<number> {
    this.onSegment?.('forward', 0, step);
    const varList = [...this.trainedVariables.values()];
    await this.sharded?.gather([...this.trainedVariables.keys()]);
    const params = this.variableRecord();
    const { value, grads } = this.params.materializes
      ? materializedGrads(this.params, this.trainedVariables, (ps) => this.forwardAll(batch, ps) as tf.Scalar)
      : tf.variableGrads(() => this.forwardAll(batch, params) as tf.Scalar, varList);
    // Read asynchronously: WebGPU in Node has no synchronous read-back.
    const loss = await readScalar(value);
    value.dispose();
    try {
      if (!Number.isFinite(loss)) {
        throw new TrainingError(
          step,
          `step ${step}: loss is ${loss}: parameters were not updated; lower the learning rate or check the data`,
        );
      }
      this.skipping = (this.guarding && this.skipUpdate?.(loss, step)) ?? false;
      for (const g of Object.values(grads)) this.ledger.tagGrad(g);
      const named = Object.entries(grads).map(([varName, g]): [string, tf.Tensor] => [
        this.paramNameOf.get(varName) ?? varName,
        g,
      ]);
      if (bucket) await bucket(named);
      else for (const [name, g] of named) await consume(name, g);
    } finally {
      tf.dispose(grads);
    }
    return loss;
  }

  /**
   * Segmented mode. Forward keeps only each segment's input; backward recomputes segment by segment, last to first.
   * `release`: hand each parameter's gradient to `consume` (then free it) as soon as it is complete. `partial`: hand
   * every part of a tied parameter's gradient at once (with `part`), so no partial sum waits.
   */
  private async segmented(
    batch: Batch,
    step: number,
    consume: (name: string, g: tf.Tensor, part?: GradientPart) => undefined | Promise<void>,
    release: boolean,
    partial = false,
    bucket?: (grads: Array<[string, tf.Tensor]>) => Promise<void>,
  ): Promise<number> {
    const stages = this.model.stages;
    const nseg = this.segments.length;
    const runSegment = (s: number, x: tf.Tensor, params: Record<string, tf.Tensor>): tf.Tensor => {
      let y = x;
      for (const i of this.segments[s]!) y = stages[i]!.forward(y, params, batch, this.ops);
      return y;
    };

    // Forward: inputs[s] is segment s's input. inputs[0] is the batch's tokens (owned by the caller). With a codec,
    // inputs[s] (s ≥ 1) is dropped as soon as the next segment's forward has read it, and saved[s] holds it encoded.
    const inputs: (tf.Tensor | undefined)[] = [batch.inputs];
    const saved: (SavedTensor | undefined)[] = [];
    const pending = new Map<string, tf.Tensor>();
    const remaining = new Map(this.useCount);
    let dy: tf.Tensor | undefined;
    let loss = Number.NaN;
    try {
      for (let s = 0; s < nseg - 1; s++) {
        this.onSegment?.('forward', s, step);
        const x = inputs[s]!;
        // Materialized (master weights) or gathered (sharding) parameters live only while the segment runs.
        await this.sharded?.gather(this.segmentParams[s]!);
        const ps = this.params.read(this.segmentParams[s]!);
        let y: tf.Tensor;
        try {
          y = tf.tidy(() => runSegment(s, x, ps));
        } finally {
          this.params.release(ps);
        }
        inputs.push(y);
        // The last segment's input is read back at once by the backward pass: it stays uncompressed.
        const codec = this.codecs[s + 1];
        if (codec && s + 1 < nseg - 1) {
          saved[s + 1] = codec.encode(y);
        }
        if (s > 0 && saved[s]) {
          x.dispose();
          inputs[s] = undefined;
        }
        // An asynchronous store (offload's copy to host) of the previous input finishes while this segment's work
        // runs: wait for it before queueing more, so at most two copies are in flight.
        if (s > 0) await saved[s]?.settled?.();
      }

      // Backward: recompute segment s from its saved input, differentiate w.r.t. [x, ...params] with dy.
      for (let s = nseg - 1; s >= 0; s--) {
        this.onSegment?.('backward', s, step);
        // Start bringing back the next input to recompute while this segment runs (offload's write-back).
        saved[s - 1]?.prefetch?.();
        const sv = saved[s];
        if (sv && !inputs[s]) {
          // Decoded for the recompute; the encoded copy is not needed any more.
          inputs[s] = sv.decode();
          sv.dispose();
          saved[s] = undefined;
        }
        const x = inputs[s]!;
        const names = this.segmentParams[s]!;
        await this.sharded?.gather(names);
        const ps = this.params.read(names);
        const vars = names.map((n) => ps[n]!);
        const wrtX = x.dtype === 'float32';
        const f = (...args: tf.Tensor[]): tf.Tensor => {
          const xin = wrtX ? args[0]! : x;
          const ps = wrtX ? args.slice(1) : args;
          const params: Record<string, tf.Tensor> = {};
          names.forEach((n, k) => {
            params[n] = ps[k]!;
          });
          return runSegment(s, xin, params);
        };
        const args = wrtX ? [x, ...vars] : vars;
        let out: { value: tf.Tensor; grads: tf.Tensor[] };
        try {
          out = tf.valueAndGrads(f)(args, dy);
        } finally {
          this.params.release(ps); // materialized copies die before this segment's updates
        }
        const { value, grads } = out;
        if (s === nseg - 1) {
          loss = await readScalar(value);
          if (!Number.isFinite(loss)) {
            tf.dispose([value, ...grads]);
            throw new TrainingError(
              step,
              `step ${step}: loss is ${loss}: parameters were not updated; lower the learning rate or check the data`,
            );
          }
          this.skipping = (this.guarding && this.skipUpdate?.(loss, step)) ?? false;
        }
        value.dispose();
        dy?.dispose();
        dy = undefined;
        if (wrtX) dy = grads[0]!;
        const paramGrads = wrtX ? grads.slice(1) : grads;
        for (const g of paramGrads) this.ledger.tagGrad(g);
        // Segment s's input is no longer needed (segment 0's belongs to the batch).
        if (s > 0) {
          x.dispose();
          inputs[s] = undefined;
          saved[s]?.dispose();
          saved[s] = undefined;
        }
        let k = 0;
        // With `bucket`: the gradients completed in this segment, consumed together after the loop.
        const ready: Array<[string, tf.Tensor]> = [];
        try {
          for (; k < names.length; k++) {
            const name = names[k]!;
            const g = paramGrads[k]!;
            if (partial) {
              const left = remaining.get(name)! - 1;
              remaining.set(name, left);
              try {
                await consume(name, g, { first: left === this.useCount.get(name)! - 1, last: left === 0 });
              } finally {
                g.dispose();
              }
              continue;
            }
            const prev = pending.get(name);
            let acc = g;
            if (prev) {
              acc = this.accumulator.add(prev, g);
              this.ledger.tagGrad(acc);
              if (acc !== prev) prev.dispose();
              g.dispose();
            }
            const left = remaining.get(name)! - 1;
            remaining.set(name, left);
            if (left === 0 && release) {
              pending.delete(name);
              if (bucket) {
                ready.push([name, acc]);
                continue;
              }
              try {
                await consume(name, acc);
              } finally {
                acc.dispose();
              }
            } else {
              pending.set(name, acc);
            }
          }
          if (ready.length > 0) await bucket!(ready);
        } finally {
          // An update that throws leaves this segment's later gradients unconsumed: free them.
          for (let j = k + 1; j < names.length; j++) paramGrads[j]!.dispose();
          for (const [, g] of ready) g.dispose();
        }
      }
      // Without release, every gradient is consumed after the whole backward pass.
      if (bucket && pending.size > 0) await bucket([...pending]);
      else for (const [name, g] of pending) await consume(name, g);
    } finally {
      dy?.dispose();
      for (let s = 1; s < inputs.length; s++) inputs[s]?.dispose();
      for (const sv of saved) sv?.dispose();
      for (const g of pending.values()) g.dispose();
    }
    return loss;
  }
}

async function readScalar(t: tf.Tensor): Promise<number> {
  return (await t.data())[0]!;
}

function checkSegments(segments: readonly (readonly number[])[], nStages: number): void {
  const flat = segments.flat();
  const ok = flat.length === nStages && flat.every((v, i) => v === i) && segments.every((s) => s.length > 0);
  if (!ok) {
    throw new InputError(
      `segments ${JSON.stringify(segments)} do not cover the model's ${nStages} stages once each, in order: group consecutive stage indices 0..${nStages - 1}, e.g. [[0],[1,2],[3]]`,
    );
  }
}
