import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type BackgroundCheckpointWriter,
  CheckpointError,
  type CheckpointHooks,
  commitCheckpointInBackground,
  decodePayload,
  emptyPhases,
  MODEL_FILE,
  modelShardFile,
  openTemporaryDir,
  optimizerFile,
  type PendingCheckpointFile,
  restoreOptimizerState,
  type StateHolder,
  sha256InBackground,
  snapshotOptimizerState,
  snapshotTensors,
  stepDirName,
  type TensorSnapshot,
  TRAINER_STATE,
  writePendingFiles,
} from '@kstar/checkpoint';
import type { Collective, SafeTensor } from '@kstar/core';
import type { GPTModel } from '@kstar/gpt';
import type { Split24Plugin, Split24State } from '@kstar/master-split24';
import type { ZeroPlugin, ZeroShardedTraining } from '@kstar/shard-zero';
import * as tf from '@tensorflow/tfjs';
import { saveOptions, type TrainerState } from './format.ts';
import type { LoadedCheckpoint } from './read.ts';
import { encodeParts, recordPhases, trainerJson } from './save.ts';
import { pushSplitWords, SPLIT24_SHARDS, snapshotWeights, splitWordsOf } from './state.ts';

/**
 * Checkpoints of a ZeRO run (`--sharding zeroK` with `--save-dir`): every rank writes only what it owns, into one
 * directory on a file system that every rank sees:
 *
 * - `optimizer.rank{r}.safetensors`: rank r's optimizer state (its row ranges or whole tensors, as the plugin stores
 *   them; stage 0: the whole state, every rank a copy);
 * - stage 3: `model.rank{r}.safetensors`: rank r's parameter shards (its rows, or the tensors it owns whole) in their
 *   stored form: float32 (`metadata.format` 'float32-shards'), or under split24 the packed words of each shard
 *   (`NAME/bf16`, `NAME/bf16_correction`; 'split24-shards', `metadata.shapes` the shard shapes), nothing expanded;
 *   stages 0-2: `model.safetensors` as in a single-process checkpoint (the weights are replicated; rank 0 writes it);
 * - rank 0: `trainer.json` and, once every rank's files are on disk, the manifest (`world.size` = N, each shard
 *   file with its `rank`), then the rename that makes the checkpoint exist.
 *
 * Resuming with the same N and stage: each rank reads its own files only (`restoreShardedCheckpoint`). With another N,
 * another stage or one process: every rank's files, re-partitioned (`reshard.ts`).
 *
 * Written in the background (`startShardedCheckpoint`): in the loop every rank only copies its state to host memory
 * and rank 0 opens the directory (one barrier); then each rank writes its files while training goes on, and rank 0,
 * once every rank's files exist (each written atomically, so a file that exists is whole), hashes them and seals the
 * checkpoint. No collective runs in the background (it would interleave with training's).
 */
export { modelShardFile };

const RANK_FILE = /\.rank(\d+)\.safetensors$/;

/** A ZeRO plugin's shard of the optimizer state, in the shape the checkpoint's state codec reads and writes. */
export function shardState(sharding: ZeroPlugin, optimizerName: string): StateHolder {
  const attached = attachedOf(sharding);
  return {
    optimizer: { name: optimizerName },
    stateNames: () => attached.stateNames(),
    stateOf: (name) => attached.stateOf(name),
    setStateOf: (name, state) => attached.setStateOf(name, state),
  };
}

function attachedOf(sharding: ZeroPlugin): ZeroShardedTraining {
  if (!sharding.attached) throw new Error('sharded checkpoint: the ZeRO plugin is not attached to an engine');
  return sharding.attached;
}

const FLOAT32_SHARDS = 'float32-shards';

/** Rank r's stage-3 parameter shards in their stored form, copied to host memory (not yet encoded). */
async function snapshotShards(attached: ZeroShardedTraining, split?: Split24Plugin): Promise<TensorSnapshot> {
  if (split) {
    const entries: Array<[string, SafeTensor]> = [];
    const shapes = pushSplitWords(entries, await split.getState());
    return { entries, metadata: { format: SPLIT24_SHARDS, shapes: JSON.stringify(shapes) } };
  }
  const shards = attached.readShards();
  try {
    // Staged copies are complete when this returns: the shard tensors may go at once.
    return await snapshotTensors(Object.entries(shards), { format: FLOAT32_SHARDS }, { staged: true });
  } finally {
    tf.dispose(Object.values(shards));
  }
}

/** How long rank 0 waits for the other ranks' files of a background save before failing it. */
const RANK_FILES_TIMEOUT_MS = 10 * 60_000;

/** Waits until every file of `names` exists in `dir` (each is renamed into place whole). */
async function waitForFiles(dir: string, names: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const missing = names.filter((n) => !existsSync(join(dir, n)));
    if (missing.length === 0) return;
    if (performance.now() > deadline) {
      throw new Error(
        `the other ranks' files ${missing.join(', ')} did not appear in ${dir} within ${timeoutMs / 1000} s: a rank failed or the save directory is not shared by every rank`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface ShardedCheckpointSource {
  sharding: ZeroPlugin;
  optimizerName: string;
  model: GPTModel;
  split?: Split24Plugin;
  trainer: TrainerState;
}

/**
 * Saves a ZeRO run's checkpoint, blocking training only while this rank's state is copied to host memory (and for
 * one barrier): every rank calls it at the same step; each writes its files in the background through its `writer`,
 * and rank 0's write ends once the checkpoint is sealed (see the file comment). Returns the checkpoint's path (whole
 * once rank 0's write ends).
 */
export async function startShardedCheckpoint(
  writer: BackgroundCheckpointWriter,
  saveDir: string,
  keep: number,
  src: ShardedCheckpointSource,
  hooks?: CheckpointHooks,
): Promise<string> {
  // This rank's previous write (on rank 0: the previous checkpoint sealed, so its temporary directory is gone).
  await writer.idle();
  const c: Collective = src.sharding.collective;
  const { step } = src.trainer;
  const tmpName = `.tmp-${stepDirName(step)}-ranks`;
  const tmp = join(saveDir, tmpName);
  const stage3 = src.sharding.stage === 3;
  const snapshots: TensorSnapshot[] = [];
  const take = (s: TensorSnapshot) => {
    snapshots.push(s);
    return encodeParts(s);
  };
  const releaseAll = () => {
    for (const s of snapshots) s.release?.();
  };
  const mine: PendingCheckpointFile[] = [];
  const shared: PendingCheckpointFile[] = [];
  try {
    const state = await snapshotOptimizerState(shardState(src.sharding, src.optimizerName), { staged: true });
    mine.push({ path: optimizerFile(c.rank), encode: take(state), rank: c.rank });
    if (stage3) {
      const shards = await snapshotShards(attachedOf(src.sharding), src.split);
      mine.push({ path: modelShardFile(c.rank), encode: take(shards), rank: c.rank });
    }
    if (c.rank === 0) {
      if (!stage3) {
        const weights = await snapshotWeights(src.model, src.split, { staged: true });
        shared.push({ path: MODEL_FILE, encode: take(weights) });
      }
      const trainer = trainerJson(src.trainer);
      shared.push({ path: TRAINER_STATE, encode: async () => trainer });
      openTemporaryDir(saveDir, tmpName);
    }
  } catch (e) {
    releaseAll();
    throw e;
  }
  await c.barrier(); // the directory exists; every rank has its copy
  const others: string[] = [];
  for (let r = 1; r < c.size; r++) {
    others.push(optimizerFile(r));
    if (stage3) others.push(modelShardFile(r));
  }
  const write = async (): Promise<string> => {
    const start = performance.now();
    const phases = emptyPhases(step);
    const listed = await writePendingFiles(tmp, [...mine, ...shared], phases);
    if (c.rank !== 0) return tmp;
    await waitForFiles(tmp, others, RANK_FILES_TIMEOUT_MS);
    for (const name of others) {
      const data = await readFile(join(tmp, name));
      listed.push({
        path: name,
        bytes: data.byteLength,
        sha256: await sha256InBackground(data),
        rank: Number(RANK_FILE.exec(name)![1]),
      });
    }
    await hooks?.beforeCommit?.(tmp, step);
    const t0 = performance.now();
    const path = await commitCheckpointInBackground(saveDir, step, tmp, listed, c.size, saveOptions(keep));
    phases.commit = (performance.now() - t0) / 1000;
    phases.total = (performance.now() - start) / 1000;
    recordPhases(writer, hooks)(phases);
    return path;
  };
  const path = join(saveDir, stepDirName(step));
  await writer
    .start(path, () => write().finally(releaseAll))
    .catch((e: unknown) => {
      releaseAll();
      throw e;
    });
  return path;
}

/**
 * Restores this rank's shard of a sharded checkpoint into an engine built over `sharding` (the same rank count and
 * stage that saved it; otherwise `reshard.ts`): its optimizer state and, at stage 3, its parameter shards (split24 words into `split`, the engine's
 * master-weights plugin, bit for bit; a float32 shard file written before split24 shards were stored as words goes
 * through the float32 path). Stages 0-2 restore `model.safetensors` before building the engine, as a single process
 * does.
 */
export function restoreShardedCheckpoint(
  resume: LoadedCheckpoint,
  sharding: ZeroPlugin,
  optimizerName: string,
  split?: Split24Plugin,
): void {
  const rank = sharding.collective.rank;
  const stateFile = optimizerFile(rank);
  const stateBytes = resume.files.get(stateFile);
  if (!stateBytes)
    throw new CheckpointError(`checkpoint '${resume.dir}' lists no ${stateFile} for rank ${rank}`);
  restoreOptimizerState(stateBytes, `${resume.dir}/${stateFile}`, shardState(sharding, optimizerName));
  if (sharding.stage < 3) return;
  const attached = attachedOf(sharding);
  const shardFile = modelShardFile(rank);
  const bytes = resume.files.get(shardFile);
  if (!bytes) throw new CheckpointError(`checkpoint '${resume.dir}' lists no ${shardFile} for rank ${rank}`);
  const origin = `${resume.dir}/${shardFile}`;
  const file = decodePayload(bytes, origin);
  if (file.metadata.format === SPLIT24_SHARDS) {
    if (!split) {
      throw new CheckpointError(
        `${origin} holds split24 shards but the run keeps float32 weights: pass --master-weights split24`,
      );
    }
    const shapes: Record<string, number[]> = JSON.parse(file.metadata.shapes ?? '{}');
    const state: Split24State = {};
    for (const name of split.names()) {
      const shape = shapes[name];
      if (!shape) {
        throw new CheckpointError(
          `${origin} lacks rank ${rank}'s split24 shard of '${name}': restore with the rank count that saved it`,
        );
      }
      state[name] = splitWordsOf(file, origin, name, shape);
    }
    split.setState(state); // a shard shape other than this rank's is a ShapeError naming both
    return;
  }
  const held = attached.readShards();
  const names = Object.keys(held);
  tf.dispose(Object.values(held));
  for (const name of names) {
    const t = file.tensors.get(name);
    if (t?.dtype !== 'F32') {
      throw new CheckpointError(`${origin} lacks rank ${rank}'s float32 shard of '${name}'`);
    }
    const value = tf.tensor(new Float32Array(t.data.slice().buffer), [...t.shape]);
    try {
      attached.writeShard(name, value);
    } finally {
      value.dispose();
    }
  }
}
