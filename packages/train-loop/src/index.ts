// Generic pieces of a training loop over @kstar/core's TrainingEngine, usable from any tfjs code (the kstar trainer
// composes them from its flags).
export { agreeOnConfig, gatherNumbers, rankBatch } from './data-parallel.ts';
export { accumulatedGradBytes, GradAccumulation } from './grad-accum.ts';
export { clippedStep, type GlobalNorm, type ScaledOptimizer, scaledOptimizer } from './grad-clip.ts';
export { learningRateAt } from './lr-schedule.ts';
export { formatDuration, ProgressBar, type ProgressState } from './progress.ts';
export { type SeqSchedule, seqAt } from './seq-schedule.ts';
export { type SkippedStep, SpikeGuard } from './spike-guard.ts';
export {
  type StopCause,
  type StopOnSignalsOptions,
  StopRequest,
  stopOnSignals,
} from './stop-request.ts';
