export type { ConformanceSpec } from './optimizer-conformance.ts';
export { describeOptimizerConformance } from './optimizer-conformance.ts';
export { randn, rng } from './random.ts';
export type { StateBits } from './toy-regression.ts';
export { bits, evalLoss, fitSteps, regressionData, regressionModel, stateBits } from './toy-regression.ts';
