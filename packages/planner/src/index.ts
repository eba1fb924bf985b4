export type { CalibrationData } from './calibration.ts';
export { Calibration, medianMs } from './calibration.ts';
export { solveExhaustive } from './exhaustive.ts';
export { type GreedyStart, solveGreedy } from './greedy.ts';
export type { PlanReason, PlanRecord } from './plan-log.ts';
export { PlanLog } from './plan-log.ts';
export type { Evaluation, PlanProblem, PlanSlot, SegmentPrediction, Solution } from './problem.ts';
export { better, searchSpaceSize } from './problem.ts';
export type { MadePlanBase, ReplannableEngine } from './replanner.ts';
export {
  AUTO_MARGIN,
  autoBudget,
  isOutOfMemory,
  OOM_SHRINK,
  OVERSHOOT_MARGIN,
  pinProblem,
  Replanner,
} from './replanner.ts';
export type {
  DecodedSegmentPlan,
  SegmentOption,
  SegmentSpace,
  StepCosts,
  Store,
} from './segment-plan.ts';
export { decodeSegmentPlan, segmentRows, segmentSlots, storesInput } from './segment-plan.ts';
export type { SolveOptions } from './solve.ts';
export { DEFAULT_EXHAUSTIVE_LIMIT, InfeasibleBudgetError, solve } from './solve.ts';
