/**
 * A planning problem: decision slots (one per segment boundary, per parameter group, or a global knob), each with a
 * list of options, and an evaluator that predicts the bytes and time of a full assignment. The solvers know nothing
 * about models: the caller's evaluator does (from the plugins' byte predictions and calibrated op times).
 */
export interface PlanSlot<O> {
  /** What the slot decides, e.g. `boundary 2`, `mst`, `state of wte`. */
  readonly name: string;
  /** The options, at least one. */
  readonly options: readonly O[];
}

/** A slot's predicted share of the plan (written into the report). */
export interface SegmentPrediction {
  readonly choice: string;
  readonly predictedBytes: number;
  readonly predictedMs: number;
}

export interface Evaluation {
  /** Predicted peak bytes of a step under this assignment. */
  readonly bytes: number;
  /** Predicted step time in milliseconds. */
  readonly ms: number;
  /** Per-segment breakdown, when the evaluator has one. */
  readonly segments?: readonly SegmentPrediction[];
}

export interface PlanProblem<O> {
  readonly slots: readonly PlanSlot<O>[];
  /** Predicted bytes and time of an assignment (one option per slot, in slot order). */
  evaluate(assignment: readonly O[]): Evaluation;
  /** Peak bytes a plan may predict. */
  readonly budget: number;
}

export interface Solution<O> {
  readonly assignment: readonly O[];
  readonly evaluation: Evaluation;
  readonly solver: 'exhaustive' | 'greedy';
  /** Assignments evaluated to find it. */
  readonly evaluated: number;
}

/** Number of assignments of a problem (Infinity past 2^53). */
export function searchSpaceSize(slots: readonly PlanSlot<unknown>[]): number {
  return slots.reduce((n, s) => n * s.options.length, 1);
}

/** Better plan: feasible first, then faster, then fewer bytes. */
export function better(a: Evaluation, b: Evaluation | undefined, budget: number): boolean {
  if (!b) return true;
  const fa = a.bytes <= budget;
  const fb = b.bytes <= budget;
  if (fa !== fb) return fa;
  if (!fa) return a.bytes < b.bytes;
  if (a.ms !== b.ms) return a.ms < b.ms;
  return a.bytes < b.bytes;
}
