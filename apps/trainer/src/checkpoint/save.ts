import { join } from 'node:path';
import {
  type BackgroundCheckpointWriter,
  type CheckpointHooks,
  encodeOptimizerState,
  encodePayloadPartsInBackground,
  MODEL_FILE,
  optimizerFile,
  snapshotOptimizerState,
  stepDirName,
  type TensorSnapshot,
  TRAINER_STATE,
  type WritePhases,
  writeCheckpoint,
  writeCheckpointInBackground,
} from '@kstar/checkpoint';
import type { TrainingEngine } from '@kstar/core';
import type { GPTModel } from '@kstar/gpt';
import type { Split24Plugin } from '@kstar/master-split24';
import { saveOptions, type TrainerState } from './format.ts';
import { encodeWeights, snapshotWeights } from './state.ts';

/** What a checkpoint is made of: the engine (optimizer state), the model or split weights, the trainer's state. */
export interface CheckpointSource {
  engine: TrainingEngine;
  model: GPTModel;
  split?: Split24Plugin;
  trainer: TrainerState;
}

/** `CheckpointHooks.written` that keeps the phases in `writer.writes` (the report's) and passes them on. */
export const recordPhases =
  (writer: BackgroundCheckpointWriter, hooks?: CheckpointHooks) => (phases: WritePhases) => {
    writer.writes.push(phases);
    hooks?.written?.(phases);
  };

/**
 * A snapshot's file encoder: the file's parts, whose float32 tensors are the snapshot's own arrays (on cuda, views of
 * its staging memory), so the snapshot is released once the write ends, not once encoded.
 */
export const encodeParts = (s: TensorSnapshot) => () => encodePayloadPartsInBackground(s.entries, s.metadata);

export const trainerJson = (trainer: TrainerState) =>
  new TextEncoder().encode(`${JSON.stringify(trainer, null, 1)}\n`);

/** Encodes the training state in its stored forms and writes it as `saveDir/step-N/` (keeping the newest `keep`). */
export async function saveCheckpoint(saveDir: string, keep: number, src: CheckpointSource): Promise<string> {
  const files = [
    { path: MODEL_FILE, data: await encodeWeights(src.model, src.split) },
    { path: optimizerFile(0), data: await encodeOptimizerState(src.engine), rank: 0 },
    { path: TRAINER_STATE, data: trainerJson(src.trainer) },
  ];
  return writeCheckpoint(saveDir, src.trainer.step, files, saveOptions(keep));
}

/**
 * `saveCheckpoint` that blocks training only while the state is copied to host memory: waits for the previous
 * background write, copies every tensor at once (stored forms: split24 words, 8-bit codes), then hands encoding,
 * hashing, writing, fsync, rename and pruning to `writer` and returns the checkpoint's path (whole once the write
 * ends). Host memory holds at most one checkpoint's copy. The same bytes as `saveCheckpoint`.
 */
export async function startCheckpoint(
  writer: BackgroundCheckpointWriter,
  saveDir: string,
  keep: number,
  src: CheckpointSource,
  hooks?: CheckpointHooks,
): Promise<string> {
  await writer.idle();
  // Staged: on cuda one batch of copies into pinned memory that the next save reuses; the files are written from
  // it (no copy), so it is returned when the write ends.
  const [weights, state] = await Promise.all([
    snapshotWeights(src.model, src.split, { staged: true }),
    snapshotOptimizerState(src.engine, { staged: true }),
  ]);
  const trainer = trainerJson(src.trainer);
  const releaseAll = () => {
    weights.release?.();
    state.release?.();
  };
  const { step } = src.trainer;
  const path = join(saveDir, stepDirName(step));
  // A failed earlier write throws here, before this one starts: its staged copies are returned all the same.
  await writer
    .start(path, () =>
      writeCheckpointInBackground(
        saveDir,
        step,
        [
          { path: MODEL_FILE, encode: encodeParts(weights) },
          { path: optimizerFile(0), encode: encodeParts(state), rank: 0 },
          { path: TRAINER_STATE, encode: async () => trainer },
        ],
        saveOptions(keep),
        {
          ...hooks,
          written: recordPhases(writer, hooks),
        },
      ).finally(releaseAll),
    )
    .catch((e: unknown) => {
      releaseAll();
      throw e;
    });
  return path;
}
