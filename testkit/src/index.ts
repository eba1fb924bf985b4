export {
  expectNoValidationError,
  onBackend,
  skipWebGPU,
  submitPendingWebGPU,
  webgpuValidationError,
} from './backends.ts';
export { measuredUniqueBytes, numel, relErr, rms } from './compare.ts';
export type { GoldenOptimizers } from './golden.ts';
export { loadGoldenOptimizers } from './golden.ts';
export type { ConformanceSpec } from './optimizer-conformance.ts';
export { describeOptimizerConformance } from './optimizer-conformance.ts';
export { randn, randn32, rng } from './random.ts';
export type { StateBits } from './toy-regression.ts';
export { bits, evalLoss, fitSteps, regressionData, regressionModel, stateBits } from './toy-regression.ts';
