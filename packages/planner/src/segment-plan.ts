import { activationMode, type RecomputeDeclaration } from '@kstar/core';
import type { PlanSlot, SegmentPrediction } from './problem.ts';

/**
 * The segment-plan space of a model made of S stages run in order (for a GPT: embedding, the blocks, the head):
 * S − 1 boundary slots (keep the next stage in this segment, or cut: a new segment whose input is stored as
 * `float32` or through a codec named by its store), one slot for the model ops (plain, selective recompute, MsT
 * chunkings …: whatever the caller names), and one slot per parameter group for where its optimizer state lives.
 * The caller supplies the bytes (its models' and plugins' predictions); the time model is here (`segmentRows`).
 */

/** How a segment's saved input is kept between forward and recompute: `float32` (as it is) or a codec's name. */
export type Store = string;

/** One option of a slot: a boundary between two stages (cut there, and how the next input is kept), the ops, or a state placement. */
export type SegmentOption<Ops, State extends string> = { label: string } & (
  | { slot: 'boundary'; cut: false }
  | { slot: 'boundary'; cut: true; store: Store }
  | { slot: 'ops'; ops: Ops }
  | { slot: 'state'; choice: State }
);

export interface SegmentSpace<Ops, State extends string> {
  /** Stages of the model (S ≥ 1). */
  nStages: number;
  /** Whether boundaries may be cut (recompute segments); false: every plan is one segment. */
  cut: boolean;
  /** Stores besides `float32` a cut may keep its input in (codec names, e.g. `bf16`, `offload`). */
  stores: readonly Store[];
  /** The ops options, at least one (the first is the default). */
  ops: readonly { label: string; ops: Ops }[];
  /** State placements (fewer than 2: no state slots). */
  state: readonly State[];
  /** Parameter-group names, one state slot each (with 2 or more placements). */
  groups: readonly string[];
}

/** The slots: one per boundary between consecutive stages, the ops, then one per parameter group's state. */
export function segmentSlots<Ops, State extends string>(
  space: SegmentSpace<Ops, State>,
): PlanSlot<SegmentOption<Ops, State>>[] {
  if (!(Number.isInteger(space.nStages) && space.nStages >= 1) || space.ops.length === 0) {
    throw new Error(
      `segmentSlots needs nStages ≥ 1 and at least one ops option, got nStages ${space.nStages} and ${space.ops.length} ops`,
    );
  }
  const boundary: SegmentOption<Ops, State>[] = [{ slot: 'boundary', cut: false, label: 'keep' }];
  if (space.cut)
    for (const store of ['float32', ...space.stores])
      boundary.push({
        slot: 'boundary',
        cut: true,
        store,
        label: store === 'float32' ? 'ckpt' : `ckpt+${store}`,
      });
  const ops: SegmentOption<Ops, State>[] = space.ops.map((o) => ({
    slot: 'ops',
    ops: o.ops,
    label: o.label,
  }));
  const state: SegmentOption<Ops, State>[] = space.state.map((choice) => ({
    slot: 'state',
    choice,
    label: choice,
  }));
  return [
    ...Array.from({ length: space.nStages - 1 }, (_, b) => ({
      name: `boundary ${b}|${b + 1}`,
      options: boundary,
    })),
    { name: 'ops', options: ops },
    ...(space.state.length > 1 ? space.groups.map((g) => ({ name: `state ${g}`, options: state })) : []),
  ];
}

/** A decoded assignment: what the engine runs. */
export interface DecodedSegmentPlan<Ops, State extends string> {
  mode: 'full' | 'segmented';
  /** Stage indices per segment, in order. */
  segments: number[][];
  /** Per segment: how its input is stored (segment 0's input is the tokens: always `float32`). */
  stores: Store[];
  ops: Ops;
  opsLabel: string;
  /** Per parameter group: where its optimizer state lives (empty without state slots). */
  states: State[];
}

/**
 * The plan an assignment of `segmentSlots` stands for. `segmentedOnly`: the optimizer updates inside the backward
 * pass (LOMO), so one segment is segmented mode too.
 */
export function decodeSegmentPlan<Ops, State extends string>(
  assignment: readonly SegmentOption<Ops, State>[],
  segmentedOnly = false,
): DecodedSegmentPlan<Ops, State> {
  const segments: number[][] = [[0]];
  const stores: Store[] = ['float32'];
  let ops: { label: string; ops: Ops } | undefined;
  const states: State[] = [];
  let stage = 0;
  for (const o of assignment) {
    if (o.slot === 'state') states.push(o.choice);
    else if (o.slot === 'ops') ops = { label: o.label, ops: o.ops };
    else {
      stage++;
      if (o.cut) {
        segments.push([stage]);
        stores.push(o.store);
      } else segments[segments.length - 1]!.push(stage);
    }
  }
  if (!ops)
    throw new Error('decodeSegmentPlan: the assignment has no ops option: pass one per slot of segmentSlots');
  // The cuts are the plan's segment plan (a stored input needs a cut): core's rule (`activationMode`) then asks for
  // segmented mode. One segment kept whole is the full graph, unless the optimizer needs segmented mode (LOMO).
  const cuts: RecomputeDeclaration[] =
    segments.length > 1 ? [{ name: 'segment plan', planSegments: () => segments }] : [];
  const mode = activationMode(cuts, segmentedOnly ? 'segmented' : undefined);
  return { mode, segments, stores, ops: ops.ops, opsLabel: ops.label, states };
}

/** Whether segment `s` of `plan` keeps its input stored between forward and recompute (segments 1 … S−2). */
export function storesInput(plan: { mode: string; segments: readonly unknown[] }, s: number): boolean {
  return plan.mode === 'segmented' && s > 0 && s < plan.segments.length - 1;
}

/** Measured milliseconds the time model needs. */
export interface StepCosts<State extends string = string> {
  /** Per ops label: forward ms and forward+backward ms of each stage. */
  stages: Record<string, { forward: readonly number[]; forwardBackward: readonly number[] }>;
  /** Per store: ms to store and bring back one segment input (0 for float32). */
  store: Record<Store, number>;
  /** Per parameter group (state slots only): ms of its updates with each state placement. */
  state?: Array<Partial<Record<State, number>>>;
}

/**
 * The plan's rows for the report, with the time model: per segment, every stage's forward+backward, plus the forward
 * again for every stage outside the last segment (segmented mode runs the forward, then recomputes each segment
 * under the gradient call), plus storing and bringing back its input; per state group, its update ms. `savedBytes`:
 * device bytes of each segment's stored input; `groups`: each group's name and device bytes per placement.
 */
export function segmentRows<Ops, State extends string>(
  plan: DecodedSegmentPlan<Ops, State>,
  costs: StepCosts<State>,
  savedBytes: readonly number[],
  groups: readonly { name: string; bytes: Record<State, number> }[] = [],
): SegmentPrediction[] {
  const c = costs.stages[plan.opsLabel];
  if (!c) throw new Error(`segmentRows: no calibrated costs for ops '${plan.opsLabel}'`);
  const nseg = plan.segments.length;
  const segmented = plan.mode === 'segmented';
  const rows: SegmentPrediction[] = plan.segments.map((seg, s) => {
    let ms = 0;
    for (const i of seg) ms += c.forwardBackward[i]! + (segmented && s < nseg - 1 ? c.forward[i]! : 0);
    const store = storesInput(plan, s) ? plan.stores[s]! : 'float32';
    if (storesInput(plan, s)) ms += costs.store[store] ?? 0;
    const what =
      nseg === 1 ? 'keep all' : s === 0 ? 'input: tokens' : store === 'float32' ? 'ckpt' : `ckpt+${store}`;
    return {
      choice: `stages ${seg[0]}-${seg[seg.length - 1]} ${what} ${plan.opsLabel}`,
      predictedBytes: s === 0 ? 0 : savedBytes[s]!,
      predictedMs: ms,
    };
  });
  for (const [k, g] of groups.entries()) {
    const choice = plan.states[k]!;
    rows.push({
      choice: `state ${g.name} ${choice}`,
      predictedBytes: g.bytes[choice],
      predictedMs: costs.state?.[k]?.[choice] ?? 0,
    });
  }
  return rows;
}
