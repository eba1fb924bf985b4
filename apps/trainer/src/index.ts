/** Moved to @kstar/train-loop; re-exported here for existing imports. */
export { learningRateAt, type StopCause, StopRequest, stopOnSignals } from '@kstar/train-loop';
export { runCli, USAGE } from './cli.ts';
export type { TrainConfig } from './config.ts';
export { loadConfigFile, parseTrainConfig, TrainConfigSchema } from './config.ts';
export type { GoldenFile } from './golden.ts';
export { readGolden } from './golden.ts';
export { checkStepFits } from './memory-check.ts';
export { OPTIMIZERS, optimizerEntry } from './optimizers.ts';
export { checkOutputPath } from './output-paths.ts';
export type { ReplayOutput } from './replay.ts';
export { compareReplay, replayGolden, replayRun } from './replay.ts';
export type { TrainReport } from './report.ts';
export { ledgerTable, writeReport } from './report.ts';
export type { PreparedRun } from './train.ts';
export { prepareRun, segmentPlan, train } from './train.ts';
