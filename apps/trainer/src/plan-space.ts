import { checkpoint } from '@kstar/act-checkpoint';
import { type CompressFormat, compress } from '@kstar/act-compress';
import { defaultChunks, mst } from '@kstar/act-mst';
import type { ActivationStrategy, EngineMode, ModelOps, ReplanOptions, SavedTensorCodec } from '@kstar/core';
import { type ActivationBackend, type GPTConfig, predictActivationBreakdown } from '@kstar/gpt';
import { offloadCodec, offloadEffective } from '@kstar/offload';
import {
  type DecodedSegmentPlan,
  decodeSegmentPlan,
  type PlanProblem,
  type SegmentOption,
  type StepCosts as SegmentStepCosts,
  segmentRows,
  segmentSlots,
  storesInput,
} from '@kstar/planner';
import type { ActivationSpec, FixedBytes } from './activations.ts';
import type { StateChoice, StateGroup } from './plan-state.ts';

/** How a segment's saved input is kept between forward and recompute. */
export type Store = 'float32' | CompressFormat | 'offload';

/** The model ops of a plan: the model's own, selective attention recompute, or MsT chunking (defaults × factor). */
export type OpsChoice = { kind: 'plain' } | { kind: 'selective' } | { kind: 'mst'; factor: number };

/** One option of a slot: a boundary (cut there, and how the next input is kept), the ops, or a state placement. */
export type PlanOption = SegmentOption<OpsChoice, StateChoice>;

/** What the planner may use: the strategies of `--activations`, or (none given) every one. */
export interface PlanSpace {
  checkpoint: boolean;
  selective: boolean;
  mst: boolean;
  compress: CompressFormat[];
  offload: boolean;
  /** Optimizer-state placements per parameter group (`--state-choices`); fewer than 2: no state slots. */
  state: StateChoice[];
}

/**
 * `mode`: the --mode the user asked for. Under 'full' the space has no cuts (and so no stores): a cut recomputes
 * segments, which full-graph mode does not do (core's rule, `recomputesSegments`); the model ops (selective
 * recompute, MsT) stay, they work in full-graph mode.
 */
export function spaceFor(
  spec: ActivationSpec,
  backend: string,
  state: StateChoice[] = [],
  mode?: EngineMode,
): PlanSpace {
  const all = !spec.checkpoint && !spec.mst && !spec.compress && !spec.offload;
  const cuts = mode !== 'full';
  const compressFormats: CompressFormat[] = !cuts
    ? []
    : spec.compress
      ? [spec.compress.format]
      : all
        ? ['bf16', 'int8']
        : [];
  return {
    checkpoint:
      cuts &&
      (all || spec.checkpoint !== undefined || spec.compress !== undefined || spec.offload !== undefined),
    selective: all || spec.checkpoint !== undefined,
    mst: all || spec.mst !== undefined,
    compress: compressFormats,
    // Only where it moves bytes: on cpu/wasm it is a no-op and would only cost time.
    offload: cuts && (all || spec.offload !== undefined) && offloadEffective(backend),
    state,
  };
}

export const MST_FACTORS = [1, 2, 4, 8] as const;

/** MsT chunk counts for a factor: the package's defaults for these rows, `factor` times finer. */
export function mstChunks(config: GPTConfig, rows: number, factor: number) {
  const def = defaultChunks({ rows, nEmbd: config.nEmbd, nHead: config.nHead, vocab: config.vocabSize });
  return {
    mlpChunks: Math.min(rows, def.mlpChunks * factor),
    attentionChunk: Math.max(1, Math.floor(def.attentionChunk / factor)),
    lossChunks: Math.min(rows, def.lossChunks * factor),
  };
}

/** The slots (see `segmentSlots` of @kstar/planner): the GPT's S − 1 boundaries, its ops, the state groups. */
export function planSlots(config: GPTConfig, space: PlanSpace, groups: readonly StateGroup[] = []) {
  const ops: { label: string; ops: OpsChoice }[] = [{ ops: { kind: 'plain' }, label: 'plain' }];
  if (space.selective) ops.push({ ops: { kind: 'selective' }, label: 'selective' });
  if (space.mst)
    for (const factor of MST_FACTORS) ops.push({ ops: { kind: 'mst', factor }, label: `mst×${factor}` });
  return segmentSlots<OpsChoice, StateChoice>({
    nStages: config.nLayer + 2,
    cut: space.checkpoint,
    stores: [...space.compress, ...(space.offload ? (['offload'] as const) : [])],
    ops,
    state: space.state,
    groups: groups.map((g) => g.name),
  });
}

/** The ops slot's options. */
export function opsOptions(config: GPTConfig, space: PlanSpace): readonly PlanOption[] {
  return planSlots(config, space).find((s) => s.name === 'ops')!.options;
}

/** Measured milliseconds the time model needs (see `plan-calibrate.ts`). */
export type StepCosts = SegmentStepCosts<StateChoice> & { store: Record<Store, number> };

/** Costs of 0 ms everywhere: for questions about bytes alone (is any plan under the budget?). */
export function zeroCosts(config: GPTConfig, space: PlanSpace): StepCosts {
  const zeros = Array.from({ length: config.nLayer + 2 }, () => 0);
  const stages: StepCosts['stages'] = {};
  for (const o of opsOptions(config, space)) stages[o.label] = { forward: zeros, forwardBackward: zeros };
  return { stages, store: { float32: 0, bf16: 0, int8: 0, offload: 0 } };
}

/** A decoded assignment: what the engine runs. */
export type DecodedPlan = Omit<DecodedSegmentPlan<OpsChoice, StateChoice>, 'stores'> & { stores: Store[] };

/** `segmentedOnly`: the optimizer updates inside the backward pass (LOMO), so one segment is segmented mode too. */
export function decode(assignment: readonly PlanOption[], segmentedOnly = false): DecodedPlan {
  return decodeSegmentPlan(assignment, segmentedOnly) as DecodedPlan;
}

export interface ProblemArgs {
  config: GPTConfig;
  batch: number;
  seq: number;
  backend: ActivationBackend;
  fixed: FixedBytes;
  space: PlanSpace;
  costs: StepCosts;
  budget: number;
  segmentedOnly?: boolean;
  /** Parameter groups for state slots (with `space.state`). */
  groups?: readonly StateGroup[];
}

/** Device bytes a store keeps for one [B, T, D] input. */
export function storeBytes(store: Store, shape: readonly number[]): number {
  if (store === 'float32') return 4 * shape.reduce((a, b) => a * b, 1);
  return codecOf(store).savedBytes(shape);
}

function codecOf(store: Exclude<Store, 'float32'>): SavedTensorCodec {
  return store === 'offload' ? offloadCodec : compress({ format: store }).codec;
}

/**
 * Bytes the ledger counts during a step that the GPT's derivation leaves out, measured by `pnpm bench
 * plan-prediction` and `bench/packages/planner/mst-bytes-probe.ts --plain` (measured − derived activation floats:
 * 2·N + 0 … 3 for every plan of the tiny grid and small's, but 2·N + 256 for tiny's selective recompute with every
 * block its own segment): the caller's int32 inputs and targets (2·N, alive through the step), scalars (the loss, the
 * learning rate; 16 allowed) and, for the one unattributed remainder, one [B, H, T] row-sum-sized buffer (512 floats
 * there). Kept as a margin in every plan so that no plan's predicted peak is below its measured one.
 */
export function unmodelledBytes(config: GPTConfig, batch: number, seq: number): number {
  return 4 * (2 * batch * seq + batch * config.nHead * seq + 16);
}

/**
 * Partial gradients of tied parameters (the GPT's wte: embedding and head) alive at the step's peak, segmented mode.
 * Segments are recomputed last to first; a tied parameter's partial gradient from a later segment waits through
 * every earlier segment that still reads it, so it adds to segment s's peak when the parameter is read both after s
 * and at or before s. The peak is the largest segment total plus what waits during it (`segmentTotals`: the
 * derivation's per-segment peaks), not the largest total plus every partial gradient: a plan whose peak is in the
 * head's segment (nothing waits yet) was predicted V·D·4 bytes high (1% for tiny).
 */
export function tiedWaitingAtPeak(
  fixed: FixedBytes,
  segments: number[][],
  segmentTotals: readonly number[],
): number {
  let peak = 0;
  segmentTotals.forEach((total, s) => {
    const waiting = fixed.waitingGrads([segments.slice(s + 1).flat(), segments.slice(0, s + 1).flat()]);
    peak = Math.max(peak, total + waiting);
  });
  return peak - Math.max(...segmentTotals);
}

/**
 * Predicted peak bytes and step time of a plan. Bytes: parameters + optimizer state + the GPT's activation
 * derivation with this plan's segments, per-segment saved-input sizes and ops (+ `unmodelledBytes`) + tied gradients
 * waiting at the peak (`tiedWaitingAtPeak`). Time:
 * every stage's forward+backward, plus the forward of every stage outside the last segment again (segmented mode
 * runs the forward, then recomputes each segment under the gradient call), plus storing and bringing back each
 * stored input.
 */
export function evaluatePlan(args: ProblemArgs, plan: DecodedPlan) {
  const { config, batch, seq, backend, fixed, costs } = args;
  const shape = [batch, seq, config.nEmbd];
  const segmented = plan.mode === 'segmented';
  // Inputs of segments 1 … S−2 are stored; segment 0's is the tokens and the last one's is read back at once.
  const saved = plan.stores.map((st, s) =>
    storesInput(plan, s) ? storeBytes(st, shape) : storeBytes('float32', shape),
  );
  const act = predictActivationBreakdown(config, {
    batch,
    seq,
    mode: plan.mode,
    backend,
    ...(segmented ? { segments: plan.segments, savedInputBytes: saved } : {}),
    selectiveAttention: plan.ops.kind === 'selective',
    ...(plan.ops.kind === 'mst' ? { mst: mstChunks(config, batch * seq, plan.ops.factor) } : {}),
  });
  // Optimizer state: the optimizer's own, or each group's placement (state slots).
  const groups = plan.states.length > 0 ? args.groups! : [];
  const stateBytes =
    groups.length > 0 ? groups.reduce((a, g, k) => a + g.bytes[plan.states[k]!], 0) : fixed.optimizerState;
  const activationBytes = act.total + unmodelledBytes(config, batch, seq);
  const tiedWaitingBytes = segmented ? tiedWaitingAtPeak(fixed, plan.segments, act.segmentTotals) : 0;
  const bytes =
    fixed.params + stateBytes + activationBytes + tiedWaitingBytes + (fixed.accumulatedGrads ?? 0);
  const segmentsOut = segmentRows(plan, costs, saved, groups);
  return {
    bytes,
    activationBytes,
    tiedWaitingBytes,
    ms: segmentsOut.reduce((a, x) => a + x.predictedMs, 0),
    segments: segmentsOut,
  };
}

export function planProblem(args: ProblemArgs): PlanProblem<PlanOption> {
  return {
    slots: planSlots(args.config, args.space, args.groups),
    budget: args.budget,
    evaluate: (a) => evaluatePlan(args, decode(a, args.segmentedOnly)),
  };
}

/** The model ops of a choice (selective attention or MsT chunking), as the strategies that provide them. */
export function strategiesOf(config: GPTConfig, rows: number, ops: OpsChoice): ActivationStrategy[] {
  if (ops.kind === 'selective') return [checkpoint({ plan: 'selective', selective: true })];
  if (ops.kind === 'mst') return [mst(mstChunks(config, rows, ops.factor))];
  return [];
}

export function modelOpsOf(config: GPTConfig, rows: number, ops: OpsChoice): ModelOps {
  return Object.assign({}, ...strategiesOf(config, rows, ops).map((s) => s.ops ?? {}));
}

/** The engine options of a plan (for the constructor or `engine.replan`). */
export function engineOptionsOf(
  config: GPTConfig,
  batch: number,
  seq: number,
  plan: DecodedPlan,
): ReplanOptions {
  const stored = plan.stores.some((s, i) => s !== 'float32' && i > 0 && i < plan.segments.length - 1);
  return {
    mode: plan.mode,
    ...(plan.mode === 'segmented' ? { segments: plan.segments } : {}),
    activations: strategiesOf(config, batch * seq, plan.ops),
    ...(stored ? { segmentCodecs: plan.stores.map((s) => (s === 'float32' ? undefined : codecOf(s))) } : {}),
  };
}
