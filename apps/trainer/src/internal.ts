// The trainer's building blocks that its benchmarks (the private @kstar/bench package) reuse: not the public API
// (that is index.ts) and free to change with the trainer. The arrow points one way: bench imports this, the trainer
// never imports bench.

export {
  encodePayloadInBackground,
  encodePayloadPartsInBackground,
  hostCopies,
  MODEL_FILE,
  optimizerFile,
  sha256InBackground,
  snapshotTensors,
  stagedHostCopies,
  writeFileAtomic,
  writeFileAtomicInBackground,
  writePendingFiles,
} from '@kstar/checkpoint';
export { parseBytes } from '@kstar/core';
export { ProgressBar } from '@kstar/train-loop';
export {
  type ActivationSpec,
  type FixedBytes,
  parseActivations,
  planActivations,
} from './activations.ts';
export { selectTrainerBackend } from './backend-select.ts';
export { CHECKPOINT_FORMAT_VERSION } from './checkpoint/format.ts';
export { saveCheckpoint } from './checkpoint/save.ts';
export { parseTrainConfig, type TrainConfig } from './config.ts';
export { parseFlags, toNumber } from './flags.ts';
export { machineInfo } from './machine.ts';
export { OPTIMIZERS, optimizerEntry } from './optimizers.ts';
export { calibrate, loadCalibration, saveCalibration } from './plan-calibrate.ts';
export { decode, planProblem, spaceFor } from './plan-space.ts';
export type { TrainReport } from './report.ts';
export { runAsMain } from './run-as-main.ts';
export { fixedBytes, type PreparedRun, prepareRun, segmentPlan, train } from './train.ts';
export { KSTAR_VERSION } from './version.ts';
