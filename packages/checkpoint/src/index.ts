export {
  fsyncDirectory,
  fsyncDirectoryInBackground,
  writeFileAtomic,
  writeFileAtomicInBackground,
} from './atomic-write.ts';
export { BackgroundCheckpointWriter } from './background.ts';
export type { Manifest, ManifestFile } from './format.ts';
export {
  CHECKPOINT_FORMAT,
  CHECKPOINT_FORMAT_VERSION,
  CheckpointError,
  MANIFEST,
  MODEL_FILE,
  modelShardFile,
  optimizerFile,
  STEP_DIR,
  stepDirName,
  TRAINER_STATE,
} from './format.ts';
export {
  decodePayload,
  encodePayload,
  encodePayloadInBackground,
  encodePayloadPartsInBackground,
  PAYLOAD_CODEC,
} from './payload.ts';
export type { LoadedCheckpoint, World } from './read.ts';
export { EVERY_RANK, readCheckpoint, readLatestCheckpoint } from './read.ts';
export type { SnapshotOptions, StagedCopies, StateHolder, TensorSnapshot } from './tensors.ts';
export {
  encodeOptimizerState,
  float32Values,
  hostCopies,
  int32Values,
  optimizerTensors,
  restoreOptimizerState,
  setOptimizerState,
  snapshotOptimizerState,
  snapshotTensors,
  stagedHostCopies,
} from './tensors.ts';
export type {
  CheckpointFile,
  CheckpointHooks,
  PendingCheckpointFile,
  SaveOptions,
  WritePhases,
} from './write.ts';
export {
  commitCheckpoint,
  commitCheckpointInBackground,
  emptyPhases,
  listCheckpoints,
  openTemporaryDir,
  pruneCheckpoints,
  sealManifest,
  sha256,
  sha256InBackground,
  sha256OfParts,
  writeCheckpoint,
  writeCheckpointInBackground,
  writeFiles,
  writePendingFiles,
} from './write.ts';
