import { InputError } from '@kstar/core';

/**
 * The checkpoint format, version 2. A checkpoint is a directory `step-NNNNNNNN/` under the save directory:
 *
 * - `manifest.json`: `{format: 'kstar-checkpoint', formatVersion, kstarVersion, step, world: {size}, files: [{path,
 *   bytes, sha256, rank?}], manifestSha256}`; `manifestSha256` is the SHA-256 of the manifest's JSON without that
 *   field, so a damaged manifest is detected like a damaged file.
 * - `trainer.json`: the writer's own state as JSON (K*'s trainer: step, data-sampler state, learning-rate schedule,
 *   the full resolved config, the model config, the losses so far); required, listed like every file.
 * - `model.safetensors`: the weights in their stored form, under K*'s parameter names: float32 (`F32`), or split24's
 *   packed words (`NAME/bf16` and `NAME/bf16_correction`, `I32`, 3 bytes a parameter) with the shapes in the
 *   metadata.
 * - `optimizer.rank0.safetensors`: every parameter's optimizer state tensors as the plugin stores them
 *   (`PARAM::KEY`: float32 moments, 8-bit codes packed four per int32 + float32 block absmax…): nothing expanded.
 *
 * Version 2 (this K*) stores the tensor files' `I32` tensors (split24 words, 8-bit codes) losslessly compressed:
 * `payload.ts` is the one place that encodes and decodes them. Version 1 files (uncompressed) are read as before; a
 * K* that reads version 1 only refuses a version-2 manifest with "format version 2 … upgrade K*" (exit 2).
 * Checkpoints are written between optimizer steps only (with `--grad-accum`, after the step's last micro-batch), so
 * no micro-batch position is stored.
 *
 * Sharded runs (`--sharding zeroK`, see `sharded.ts`): each rank r of N writes `optimizer.rank{r}.safetensors` (its
 * state shard) and, with ZeRO-3, `model.rank{r}.safetensors` (its float32 parameter shards; stages 0-2 keep the
 * replicated `model.safetensors`) into the same temporary directory; after a barrier rank 0 writes `trainer.json` and
 * the manifest (`world.size = N`, each shard file with its `rank`), then renames. A reader with N ranks takes the
 * files of its rank; a reader with another N takes every rank's files (to re-partition them).
 *
 * Writing (`write.ts`): into `.tmp-step-…/`, each file fsynced, the manifest last, the directory fsynced, renamed,
 * the save directory fsynced: a checkpoint exists whole or not at all.
 */
export const CHECKPOINT_FORMAT = 'kstar-checkpoint';
export const CHECKPOINT_FORMAT_VERSION = 2;

export const MANIFEST = 'manifest.json';
export const TRAINER_STATE = 'trainer.json';
export const MODEL_FILE = 'model.safetensors';
export const optimizerFile = (rank: number) => `optimizer.rank${rank}.safetensors`;
/** ZeRO-3: rank r's parameter shards (the sharded layout; see the file comment). */
export const modelShardFile = (rank: number) => `model.rank${rank}.safetensors`;

export interface ManifestFile {
  path: string;
  bytes: number;
  sha256: string;
  rank?: number;
}

export interface Manifest {
  format: typeof CHECKPOINT_FORMAT;
  formatVersion: number;
  kstarVersion: string;
  step: number;
  createdAt: string;
  world: { size: number };
  files: ManifestFile[];
  manifestSha256: string;
}

/** `step-00000042`: sorts by step as text. */
export const stepDirName = (step: number) => `step-${String(step).padStart(8, '0')}`;
export const STEP_DIR = /^step-(\d{8,})$/;

/** A damaged, incomplete or incompatible checkpoint: one line naming the file, exit 2. */
export class CheckpointError extends InputError {
  constructor(message: string) {
    super(message, 'E_CHECKPOINT');
  }
}
