export {
  expectNoValidationError,
  inPlaceWebGPUStep,
  onBackend,
  skipWebGPU,
  submitPendingWebGPU,
  webgpuValidationError,
} from './backends.ts';
export { measuredUniqueBytes, numel, relErr, relL2Error, rms } from './compare.ts';
export { FactoredMoment64 } from './factored-moment64.ts';
export type { GoldenOptimizers } from './golden.ts';
export { goldenRunsOf, loadGoldenOptimizers } from './golden.ts';
export type { PluginReplayOptions, ReplayResult } from './golden-replay.ts';
export {
  emptyReplayResult,
  expectSameFinalBits,
  finishReplay,
  goldenGradients,
  goldenVariables,
  initGoldenStates,
  recordGoldenErrors,
  replayGoldenOptimizer,
  replayGoldenPlugin,
} from './golden-replay.ts';
export { applyGradientsPlan, GRADIENT_ORDER_PLAN, worstErrorOverGradientPlan } from './gradient-plan.ts';
export { expectFillStepsInPlace, expectUpdatesLeakNothing } from './leak-check.ts';
export { minimizeLeastSquares } from './least-squares.ts';
export type { ConformanceSpec } from './optimizer-conformance.ts';
export { describeOptimizerConformance } from './optimizer-conformance.ts';
export type { BadOptionsCase } from './option-checks.ts';
export {
  callUntyped,
  constructUntyped,
  expectOptimizerPluginNamed,
  itRefusesInheritedOptionNames,
  itRejectsBadOptions,
} from './option-checks.ts';
export { randn, randn32, rng } from './random.ts';
export type { SchedulablePlugin } from './schedule-check.ts';
export { expectLearningRateSetterChecked, expectScheduledLearningRate } from './schedule-check.ts';
export { sgdPlugin } from './sgd.ts';
export { expectStateBytesMeasured, goldenRole } from './state-bytes.ts';
export { stepResultPeaking } from './step-result.ts';
export { momentum, sgd } from './toy-optimizers.ts';
export type { StateBits } from './toy-regression.ts';
export { bits, evalLoss, fitSteps, regressionData, regressionModel, stateBits } from './toy-regression.ts';
export type { ToyNames } from './toy-staged-model.ts';
export { disposeModel, randomBatch, TIED_TOY_NAMES, toyModel, toyStagedModel } from './toy-staged-model.ts';
