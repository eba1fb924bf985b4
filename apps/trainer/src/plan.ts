import { freemem } from 'node:os';
import { type EngineMode, InputError, type OptimizerPlugin } from '@kstar/core';
import { type ActivationBackend, createGPT, type GPTConfig, type GPTModel } from '@kstar/gpt';
import {
  autoBudget as budgetFromFree,
  type Calibration,
  InfeasibleBudgetError,
  PlanLog,
  type PlanProblem,
  type PlanReason,
  type PlanRecord,
  pinProblem,
  Replanner,
  type Solution,
  solve,
} from '@kstar/planner';
import {
  type ActivationSpec,
  describeSpec,
  type FixedBytes,
  type PlannedActivations,
} from './activations.ts';
import { activationBackendOf, type TrainerBackend } from './backend-select.ts';
import { WASM_HEAP_MAX_BYTES } from './memory-check.ts';
import { optimizerEntry } from './optimizers.ts';
import { calibrate, calibrateState } from './plan-calibrate.ts';
import {
  type DecodedPlan,
  decode,
  engineOptionsOf,
  evaluatePlan,
  type PlanOption,
  type PlanSpace,
  type ProblemArgs,
  planProblem,
  spaceFor,
  zeroCosts,
} from './plan-space.ts';
import { type StateChoice, type StateGroup, stateGroups, usableStateChoices } from './plan-state.ts';
import type { PreparedRun } from './train.ts';

/** A plan made for a sequence length, with what the engine needs and the record written into the report. */
export interface MadePlan {
  plan: DecodedPlan;
  record: PlanRecord;
  predictedPeakBytes: number;
  predictedActivationBytes: number;
  /** Partial gradients of tied parameters alive at the predicted peak (segmented mode; `tiedWaitingAtPeak`). */
  predictedTiedWaitingBytes: number;
  seq: number;
}

export interface AdaptivePlannerArgs {
  config: GPTConfig;
  batch: number;
  backend: ActivationBackend;
  fixed: FixedBytes;
  spec: ActivationSpec;
  budget: number;
  calibration: Calibration;
  /**
   * Every plan takes these option labels, one per slot (`PlanRecord.choices` of another run): the run then uses one
   * fixed plan whatever the sequence length (a reference run for tests and comparisons).
   */
  pin?: readonly string[];
  /** The optimizer updates inside the backward pass (LOMO), or --mode segmented was asked for: every plan is segmented. */
  segmentedOnly?: boolean;
  /** The --mode the user asked for: under 'full' no plan cuts segments (`spaceFor`); 'segmented': see `segmentedOnly`. */
  mode?: EngineMode;
  /**
   * Per parameter group, where its optimizer state may live (`--state-choices`; float32 always). Chosen by the
   * first plan: later plans keep it (the state exists by then).
   */
  state?: { choices: readonly StateChoice[]; groups: readonly StateGroup[]; optimizer: OptimizerPlugin };
  /**
   * Variable-length (packed) batches: plan per bucket of lengths, for the bucket's longest (`Replanner`):
   * `--pack-documents --length-buckets`.
   */
  lengthBuckets?: readonly number[];
  log?: (line: string) => void;
}

/**
 * The GPT's planner for one run: the problem of `plan-space.ts` solved under the budget, calibrated on a probe
 * model; when to re-plan (sequence length, measured peak, out of memory) is `Replanner`'s (@kstar/planner).
 */
export class AdaptivePlanner extends Replanner<MadePlan> {
  readonly space: PlanSpace;
  private readonly args: AdaptivePlannerArgs;

  constructor(args: AdaptivePlannerArgs) {
    super(args.budget, args.lengthBuckets);
    this.args = args;
    this.space = spaceFor(
      args.spec,
      args.backend,
      args.state ? usableStateChoices(args.state.choices, args.state.optimizer.name, args.backend) : [],
      args.mode,
    );
  }

  /** Solve for `seq` under the current budget (calibrating first when this shape was not measured). */
  async make(step: number, length: number, reason: PlanReason, detail: string): Promise<MadePlan> {
    const { config, batch, backend, fixed } = this.args;
    const seq = this.planLength(length);
    // Bytes do not depend on costs: an impossible budget fails here, before any calibration.
    const groups = this.args.state?.groups;
    const bytesOnly = {
      config,
      batch,
      seq,
      backend,
      fixed,
      space: this.space,
      costs: zeroCosts(config, this.space),
      ...(groups ? { groups } : {}),
    };
    this.check(bytesOnly, reason);
    // Calibrated on a model of its own: the run's variables may have been adopted by a master-weights plugin.
    const probe = createGPT(config, { seed: 0 });
    let costs: Awaited<ReturnType<typeof calibrate>>;
    try {
      costs = await calibrate(probe, batch, seq, this.space, this.args.calibration);
      if (groups && this.space.state.length > 1)
        costs.state = await calibrateState(
          probe,
          this.args.state!.optimizer,
          groups,
          this.space,
          this.args.calibration,
        );
    } finally {
      probe.dispose();
    }
    const problemArgs = {
      ...bytesOnly,
      costs,
      budget: this.budget,
      ...(this.args.segmentedOnly ? { segmentedOnly: true } : {}),
    };
    let solution: Solution<PlanOption>;
    try {
      try {
        solution = solve(this.narrowed(planProblem(problemArgs)));
      } catch (e) {
        // After an out-of-memory error: the tightest plan there is, if it is tighter than the one that failed.
        const failed = this.current?.predictedPeakBytes ?? 0;
        if (!(reason === 'out-of-memory' && e instanceof InfeasibleBudgetError && e.smallestBytes < failed))
          throw e;
        this.budget = e.smallestBytes;
        problemArgs.budget = e.smallestBytes;
        solution = solve(this.narrowed(planProblem(problemArgs)));
      }
    } catch (e) {
      throw this.explain(e, seq);
    }
    const plan = decode(solution.assignment, this.args.segmentedOnly);
    const e = evaluatePlan(problemArgs, plan);
    const record = this.log.add({
      step,
      reason,
      detail,
      budget: this.budget,
      solver: solution.solver,
      evaluated: solution.evaluated,
      predictedBytes: e.bytes,
      predictedMs: e.ms,
      choices: solution.assignment.map((o) => o.label),
      segments: e.segments,
    });
    this.args.log?.(`kstar: ${PlanLog.describe(record)}`);
    this.current = {
      plan,
      record,
      predictedPeakBytes: e.bytes,
      predictedActivationBytes: e.activationBytes,
      predictedTiedWaitingBytes: e.tiedWaitingBytes,
      seq,
    };
    return this.current;
  }

  /** The problem with `pin` applied, and the state slots narrowed to the first plan's placement (it exists). */
  private narrowed(problem: PlanProblem<PlanOption>): PlanProblem<PlanOption> {
    const p = pinProblem(problem, this.args.pin);
    const states = this.log.plans[0] ? this.current!.plan.states : [];
    if (states.length === 0) return p;
    let k = 0;
    return {
      ...p,
      slots: p.slots.map((s) => {
        if (!s.name.startsWith('state ')) return s;
        const kept = states[k++];
        return { ...s, options: s.options.filter((o) => o.slot === 'state' && o.choice === kept) };
      }),
    };
  }

  /**
   * Parameter name → where its optimizer state lives, per the first plan, for the parameters not in the optimizer's
   * own float32 (empty when every group keeps it, or without state slots: the optimizer is then used as it is).
   */
  placement(): Map<string, StateChoice> {
    const out = new Map<string, StateChoice>();
    const states = this.log.plans[0] ? this.current!.plan.states : [];
    for (const [k, g] of (this.args.state?.groups ?? []).entries())
      if (states[k] && states[k] !== 'float32') for (const n of g.params) out.set(n, states[k]!);
    return out;
  }

  /** Predicted device bytes of the optimizer state under the placement (undefined without state slots). */
  predictedStateBytes(): number | undefined {
    const rows = this.current?.record.segments.filter((s) => s.choice.startsWith('state ')) ?? [];
    return rows.length > 0 ? rows.reduce((a, s) => a + s.predictedBytes, 0) : undefined;
  }

  /** Throws the budget's InputError when no plan's predicted bytes fit (after out-of-memory: unless a tighter one exists). */
  private check(args: Omit<ProblemArgs, 'budget'>, reason: PlanReason): void {
    try {
      solve(this.narrowed(planProblem({ ...args, budget: this.budget })));
    } catch (e) {
      if (reason === 'out-of-memory' && e instanceof InfeasibleBudgetError) return;
      throw this.explain(e, args.seq);
    }
  }

  /** An infeasible budget, in the trainer's words (the error unchanged otherwise). */
  private explain(e: unknown, seq: number): unknown {
    if (!(e instanceof InfeasibleBudgetError)) return e;
    return new InputError(
      `memory budget ${Math.round(this.budget).toLocaleString('en-US')} bytes cannot hold a step of batch ${this.args.batch} × seq ${seq}: the smallest predicted peak with activations '${describeSpec(this.args.spec) || 'any'}' is ${Math.round(e.smallestBytes).toLocaleString('en-US')} bytes (${e.solver} search, ${e.searched.toLocaleString('en-US')} plans); try --activations checkpoint,mst,compress:int8, a smaller --batch or --seq, or a larger --memory-budget`,
      'E_MEMORY_BUDGET',
    );
  }

  /** The engine options of the current plan. */
  engineOptions() {
    const c = this.current!;
    return engineOptionsOf(this.args.config, this.args.batch, c.seq, c.plan);
  }
}

/**
 * The planner of a run, for `kstar train` and `kstar plan` alike: the budget (`auto` or none: free memory minus the
 * margin), the activation strategies, the state choices and a pinned plan of `run`.
 */
export function plannerFor(
  run: PreparedRun,
  args: {
    backend: TrainerBackend;
    model: GPTModel;
    optimizer: OptimizerPlugin;
    fixed: FixedBytes;
    calibration: Calibration;
    log?: (line: string) => void;
  },
): AdaptivePlanner {
  const { backend, model, optimizer } = args;
  const budget =
    run.memoryBudget === undefined || run.memoryBudget === 'auto'
      ? autoBudget(backend, freemem())
      : run.memoryBudget;
  return new AdaptivePlanner({
    config: run.modelConfig,
    batch: run.config.batch,
    backend: activationBackendOf(backend),
    fixed: args.fixed,
    spec: run.activations,
    budget,
    calibration: args.calibration,
    // LOMO updates inside the backward pass; --mode segmented asks for it: one segment is segmented mode too.
    segmentedOnly:
      optimizerEntry(run.config.optimizer).requiresMode === 'segmented' || run.requestedMode === 'segmented',
    ...(run.requestedMode ? { mode: run.requestedMode } : {}),
    ...(run.pinPlan ? { pin: run.pinPlan } : {}),
    ...(run.packer ? { lengthBuckets: run.packer.buckets } : {}),
    ...(run.stateChoices
      ? { state: { choices: run.stateChoices, groups: stateGroups(model, optimizer), optimizer } }
      : {}),
    ...(args.log ? { log: args.log } : {}),
  });
}

/**
 * `--memory-budget auto`: the free memory of where tensors live, minus `AUTO_MARGIN` (@kstar/planner). cpu: free host memory; wasm:
 * that, at most the 4 GiB a wasm32 heap can grow to; GPU backends: WebGPU reports no device memory size, so free
 * host memory stands in for it (exact on unified-memory machines, an overestimate on a discrete GPU with less).
 */
export function autoBudget(backend: string, freeBytes: number): number {
  return budgetFromFree(freeBytes, backend === 'wasm' ? WASM_HEAP_MAX_BYTES : undefined);
}

/** The current plan in the shape the trainer's report and log use (`PlannedActivations`). */
export function plannedActivations(planner: AdaptivePlanner): PlannedActivations {
  const made = planner.current!;
  const options = planner.engineOptions();
  const { plan } = made;
  return {
    choice: {
      mode: plan.mode,
      ...(plan.mode === 'segmented' ? { segments: plan.segments, segmentsBy: 'engine' as const } : {}),
      selective: plan.ops.kind === 'selective',
    },
    strategies: [...(options.activations ?? [])],
    predictedActivationBytes: made.predictedActivationBytes,
    predictedPeakBytes: made.predictedPeakBytes,
    tiedWaitingBytes: made.predictedTiedWaitingBytes,
  };
}

/**
 * Fault injection for tests (`KSTAR_INJECT_OOM=STEP`): an engine `onSegment` hook that throws an out-of-memory
 * error in the first forward segment of step STEP, once.
 */
export function injectedOutOfMemory(value: string | undefined) {
  if (value === undefined || value === '') return undefined;
  const at = Number(value);
  if (!(Number.isInteger(at) && at >= 1)) {
    throw new InputError(
      `KSTAR_INJECT_OOM='${value}' is not a step number: set it to an integer ≥ 1 or unset it`,
      'E_CONFIG',
    );
  }
  let fired = false;
  return (phase: 'forward' | 'backward', _segment: number, step: number) => {
    if (!fired && step === at && phase === 'forward') {
      fired = true;
      throw new Error(`injected out of memory at step ${step} (KSTAR_INJECT_OOM)`);
    }
  };
}
