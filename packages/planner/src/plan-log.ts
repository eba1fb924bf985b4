import type { SegmentPrediction, Solution } from './problem.ts';

/** Why a plan was made. */
export type PlanReason = 'start' | 'sequence-length' | 'length-bucket' | 'measured-peak' | 'out-of-memory';

/** One plan made during a run, as written into the report (`plans: [...]`). */
export interface PlanRecord {
  /** The step the plan applies from (1-based). */
  readonly step: number;
  readonly reason: PlanReason;
  /** What triggered it, in words (e.g. `seq 64 → 256`). */
  readonly detail: string;
  readonly budget: number;
  readonly solver: Solution<unknown>['solver'];
  readonly evaluated: number;
  readonly predictedBytes: number;
  readonly predictedMs: number;
  /** The chosen option of each slot, in slot order. */
  readonly choices: readonly string[];
  readonly segments: readonly SegmentPrediction[];
}

/** The plans of a run, in order, with a one-line description of each for the log. */
export class PlanLog {
  readonly plans: PlanRecord[] = [];

  add(record: PlanRecord): PlanRecord {
    this.plans.push(record);
    return record;
  }

  static describe(r: PlanRecord): string {
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
    return `plan at step ${r.step} (${r.reason}${r.detail ? `: ${r.detail}` : ''}): ${r.choices.join(' ')}; predicted ${mib(r.predictedBytes)} of ${mib(r.budget)}, ${r.predictedMs.toFixed(1)} ms/step (${r.solver}, ${r.evaluated} plans evaluated)`;
  }
}
