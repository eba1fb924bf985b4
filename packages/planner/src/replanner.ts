import { InputError, type ReplanOptions, type StepResult, TrainingError } from '@kstar/core';
import { PlanLog, type PlanReason } from './plan-log.ts';
import type { PlanProblem } from './problem.ts';

/** A measured step peak above the prediction by more than this fraction triggers a re-plan. */
export const OVERSHOOT_MARGIN = 0.05;
/** After an out-of-memory error the budget shrinks to this fraction of the failed plan's prediction. */
export const OOM_SHRINK = 0.8;
/** Fraction of free memory an automatic budget leaves unused (allocator slack, the runtime, other processes). */
export const AUTO_MARGIN = 0.1;

/** An automatic budget: `freeBytes` (at most `capBytes`, e.g. a wasm32 heap's 4 GiB) minus `AUTO_MARGIN`. */
export function autoBudget(freeBytes: number, capBytes = Number.POSITIVE_INFINITY): number {
  return Math.floor(Math.min(freeBytes, capBytes) * (1 - AUTO_MARGIN));
}

/** True for errors that mean the device (or the wasm heap) ran out of memory. */
export function isOutOfMemory(e: unknown): boolean {
  const m = e instanceof Error ? `${e.name} ${e.message}` : String(e);
  return /out of (GPU )?memory|OutOfMemory|Cannot enlarge memory|allocation failed/i.test(m);
}

/** The problem with each slot's options narrowed to the pinned label (InputError when a label is not an option). */
export function pinProblem<O extends { label: string }>(
  problem: PlanProblem<O>,
  pin: readonly string[] | undefined,
): PlanProblem<O> {
  if (!pin) return problem;
  if (pin.length !== problem.slots.length) {
    throw new InputError(
      `pinned plan has ${pin.length} choices for ${problem.slots.length} slots: give one per slot`,
      'E_CONFIG',
    );
  }
  return {
    ...problem,
    slots: problem.slots.map((s, i) => {
      const options = s.options.filter((o) => o.label === pin[i]);
      if (options.length === 0) {
        throw new InputError(
          `pinned plan: '${pin[i]}' is not an option of ${s.name}: use one of ${s.options.map((o) => o.label).join(', ')}`,
          'E_CONFIG',
        );
      }
      return { ...s, options };
    }),
  };
}

/** What re-planning needs of a made plan. */
export interface MadePlanBase {
  predictedPeakBytes: number;
  /** The sequence length it was made for. */
  seq: number;
}

/** What re-planning needs of the engine (`TrainingEngine` of @kstar/core). */
export interface ReplannableEngine {
  replan(options: ReplanOptions): void;
  readonly updatesThisStep: number;
}

/**
 * Adaptive memory redistribution for one run: plans at the start, and again when the sequence length changes,
 * when a step's measured peak exceeds the prediction by more than `OVERSHOOT_MARGIN`, and on an out-of-memory
 * error (then the same step is retried with the same batch). Every plan is logged with its reason. A subclass
 * makes the plans (`make`: solve for a sequence length under `this.budget`) and turns the current one into engine
 * options.
 */
export abstract class Replanner<Made extends MadePlanBase> {
  readonly log = new PlanLog();
  /** The budget plans are solved against (tightened after an overshoot or an out-of-memory error). */
  budget: number;
  current: Made | undefined;
  /** The budget the run was given. */
  readonly givenBudget: number;
  /** Upper sequence lengths of the length buckets, ascending (empty: a plan per exact length). */
  readonly lengthBuckets: readonly number[];

  /**
   * `lengthBuckets`: for variable-length (packed) batches, plan once per bucket of lengths, for the bucket's longest
   * (a plan that fits T fits every shorter length: activation bytes grow with T), instead of at every new length.
   */
  constructor(budget: number, lengthBuckets: readonly number[] = []) {
    for (const [i, b] of lengthBuckets.entries()) {
      if (!(Number.isInteger(b) && b >= 1) || (i > 0 && b <= lengthBuckets[i - 1]!)) {
        throw new InputError(
          `length buckets ${JSON.stringify(lengthBuckets)}: bucket ${JSON.stringify(b)} is not an integer above the one before it: give ascending sequence lengths ≥ 1`,
          'E_CONFIG',
        );
      }
    }
    this.givenBudget = budget;
    this.budget = budget;
    this.lengthBuckets = lengthBuckets;
  }

  /** The sequence length to plan for: the top of `seq`'s bucket (`seq` itself without buckets or past the last). */
  planLength(seq: number): number {
    return this.lengthBuckets.find((b) => b >= seq) ?? seq;
  }

  /** Solve for `seq` under `this.budget`, set `current` and log the plan. */
  abstract make(step: number, seq: number, reason: PlanReason, detail: string): Promise<Made>;

  /** The engine options of the current plan. */
  abstract engineOptions(): ReplanOptions;

  /**
   * Before a step: re-plan when its sequence length differs from the plan's (with length buckets: when it falls in
   * another bucket, reason `length-bucket`).
   */
  async beforeStep(engine: ReplannableEngine, step: number, seq: number): Promise<void> {
    const cur = this.current!;
    const target = this.planLength(seq);
    if (cur.seq === target) return;
    if (this.lengthBuckets.length === 0)
      await this.make(step, seq, 'sequence-length', `seq ${cur.seq} → ${seq}`);
    else await this.make(step, target, 'length-bucket', `seq ${seq}: bucket ≤ ${target} (was ≤ ${cur.seq})`);
    engine.replan(this.engineOptions());
  }

  /** After a step: a measured peak above the prediction by more than the margin tightens the budget and re-plans. */
  async afterStep(engine: ReplannableEngine, r: StepResult, nextStep: number): Promise<void> {
    const cur = this.current!;
    if (r.peakBytes <= cur.predictedPeakBytes * (1 + OVERSHOOT_MARGIN)) return;
    const over = r.peakBytes - cur.predictedPeakBytes;
    this.budget = Math.min(this.budget, this.givenBudget) - over;
    await this.make(
      nextStep,
      cur.seq,
      'measured-peak',
      `step ${r.step} measured ${r.peakBytes.toLocaleString('en-US')} bytes, predicted ${Math.round(cur.predictedPeakBytes).toLocaleString('en-US')}`,
    );
    engine.replan(this.engineOptions());
  }

  /**
   * Run a step; on an out-of-memory error before any parameter was updated, re-plan tighter and run the same step
   * again (the caller's `run` must use the same batch). An out-of-memory error after updates began cannot be
   * retried exactly: it is rethrown as a TrainingError that says so.
   */
  async guard(engine: ReplannableEngine, step: number, run: () => Promise<StepResult>): Promise<StepResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (e) {
        if (!isOutOfMemory(e) || attempt > 4) throw e;
        if (engine.updatesThisStep > 0) {
          throw new TrainingError(
            step,
            `step ${step}: out of memory after ${engine.updatesThisStep} parameter updates: the step cannot be retried exactly; lower --memory-budget and resume`,
          );
        }
        const cur = this.current!;
        this.budget = cur.predictedPeakBytes * OOM_SHRINK;
        await this.make(
          step,
          cur.seq,
          'out-of-memory',
          `attempt ${attempt}: ${(e as Error).message.split('\n')[0]}`,
        );
        engine.replan(this.engineOptions());
      }
    }
  }
}
