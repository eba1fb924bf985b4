import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Collective } from '@kstar/core';
import { decodeSafetensors, encodeSafetensors, type GPTModel, type SafeTensor } from '@kstar/gpt';
import type { Split24Plugin } from '@kstar/master-split24';
import type { ZeroPlugin, ZeroShardedTraining } from '@kstar/shard-zero';
import * as tf from '@tensorflow/tfjs';
import {
  CheckpointError,
  type ManifestFile,
  MODEL_FILE,
  optimizerFile,
  stepDirName,
  TRAINER_STATE,
  type TrainerState,
} from './format.ts';
import type { LoadedCheckpoint } from './read.ts';
import { encodeOptimizerState, encodeWeights, restoreOptimizerState, type StateHolder } from './state.ts';
import { type CheckpointFile, commitCheckpoint, openTemporaryDir, sha256, writeFiles } from './write.ts';

/**
 * Checkpoints of a ZeRO run (`--sharding zeroK` with `--save-dir`): every rank writes only what it owns, into one
 * directory on a file system that every rank sees:
 *
 * - `optimizer.rank{r}.safetensors`: rank r's optimizer state (its row ranges or whole tensors, as the plugin stores
 *   them; stage 0: the whole state, every rank a copy);
 * - stage 3: `model.rank{r}.safetensors`: rank r's float32 parameter shards (its rows, or the tensors it owns whole);
 *   stages 0-2: `model.safetensors` as in a single-process checkpoint (the weights are replicated; rank 0 writes it);
 * - rank 0: `trainer.json` and, once every rank's files are on disk, the manifest (`world.size` = N, each shard
 *   file with its `rank`), then the rename that makes the checkpoint exist.
 *
 * Resuming needs the same N (`readCheckpoint` refuses another); each rank reads its own files only.
 */
export const modelShardFile = (rank: number) => `model.rank${rank}.safetensors`;
const RANK_FILE = /\.rank(\d+)\.safetensors$/;

/** A ZeRO plugin's shard of the optimizer state, in the shape the checkpoint's state codec reads and writes. */
function shardState(sharding: ZeroPlugin, optimizerName: string): StateHolder {
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

/** Rank r's stage-3 parameter shards as float32 safetensors. */
async function encodeShards(attached: ZeroShardedTraining): Promise<Uint8Array> {
  const shards = attached.readShards();
  try {
    const entries: Array<[string, SafeTensor]> = [];
    for (const [name, t] of Object.entries(shards)) {
      const values = (await t.data()) as Float32Array;
      entries.push([
        name,
        { dtype: 'F32', shape: [...t.shape], data: new Uint8Array(values.slice().buffer) },
      ]);
    }
    return encodeSafetensors(entries, { format: 'float32-shards' });
  } finally {
    tf.dispose(Object.values(shards));
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
 * Every rank calls this at the same step: writes this rank's files into the shared temporary directory, and rank 0
 * seals the checkpoint once all are there (barriers between). Returns the checkpoint's path on every rank.
 */
export async function saveShardedCheckpoint(
  saveDir: string,
  keep: number,
  src: ShardedCheckpointSource,
): Promise<string> {
  const c: Collective = src.sharding.collective;
  const { step } = src.trainer;
  const tmpName = `.tmp-${stepDirName(step)}-ranks`;
  const tmp = join(saveDir, tmpName);
  const attached = attachedOf(src.sharding);
  const mine: CheckpointFile[] = [
    {
      path: optimizerFile(c.rank),
      data: await encodeOptimizerState(shardState(src.sharding, src.optimizerName)),
      rank: c.rank,
    },
  ];
  if (src.sharding.stage === 3) {
    mine.push({ path: modelShardFile(c.rank), data: await encodeShards(attached), rank: c.rank });
  }
  const shared: CheckpointFile[] = [];
  if (c.rank === 0) {
    if (src.sharding.stage < 3)
      shared.push({ path: MODEL_FILE, data: await encodeWeights(src.model, src.split) });
    shared.push({
      path: TRAINER_STATE,
      data: new TextEncoder().encode(`${JSON.stringify(src.trainer, null, 1)}\n`),
    });
    openTemporaryDir(saveDir, tmpName);
  }
  await c.barrier(); // the directory exists
  writeFiles(tmp, mine);
  await c.barrier(); // every rank's files are on disk
  if (c.rank === 0) {
    const listed: ManifestFile[] = writeFiles(tmp, shared);
    for (const name of readdirSync(tmp).sort()) {
      const m = RANK_FILE.exec(name);
      if (!m) continue;
      const data = readFileSync(join(tmp, name));
      listed.push({ path: name, bytes: data.byteLength, sha256: sha256(data), rank: Number(m[1]) });
    }
    commitCheckpoint(saveDir, step, tmp, listed, c.size, keep);
  }
  await c.barrier(); // the checkpoint exists for every rank
  return join(saveDir, stepDirName(step));
}

/**
 * Restores this rank's shard of a sharded checkpoint into an engine built over `sharding` (the same rank count that
 * saved it): its optimizer state and, at stage 3, its parameter shards. Stages 0-2 restore `model.safetensors` before
 * building the engine, as a single process does.
 */
export function restoreShardedCheckpoint(
  resume: LoadedCheckpoint,
  sharding: ZeroPlugin,
  optimizerName: string,
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
  const file = decodeSafetensors(bytes, `${resume.dir}/${shardFile}`);
  const held = attached.readShards();
  const names = Object.keys(held);
  tf.dispose(Object.values(held));
  for (const name of names) {
    const t = file.tensors.get(name);
    if (t?.dtype !== 'F32') {
      throw new CheckpointError(`${resume.dir}/${shardFile} lacks rank ${rank}'s float32 shard of '${name}'`);
    }
    const value = tf.tensor(new Float32Array(t.data.slice().buffer), [...t.shape]);
    try {
      attached.writeShard(name, value);
    } finally {
      value.dispose();
    }
  }
}

/**
 * Joins a ZeRO-3 checkpoint's parameter shards (`model.rank{r}.safetensors` of every rank, read with EVERY_RANK) into
 * `model`'s variables: a row-owned parameter's shards concatenated along rows in rank order (ranks own consecutive row
 * ranges; a rank with none holds no entry), a whole-owned one taken from its owner's file. Needs no MPI.
 */
export function assignModelShards(checkpoint: LoadedCheckpoint, model: GPTModel): void {
  const ranks = checkpoint.manifest.world.size;
  const files: ReturnType<typeof decodeSafetensors>[] = [];
  for (let r = 0; r < ranks; r++) {
    const bytes = checkpoint.files.get(modelShardFile(r));
    if (!bytes) {
      throw new CheckpointError(
        `checkpoint '${checkpoint.dir}' holds neither ${MODEL_FILE} nor ${modelShardFile(r)}: read it with every rank's files (EVERY_RANK), or it is not a ZeRO-3 checkpoint of ${ranks} ranks`,
      );
    }
    files.push(decodeSafetensors(bytes, `${checkpoint.dir}/${modelShardFile(r)}`));
  }
  for (const [name, v] of model.variables) {
    const pieces: Float32Array[] = [];
    let rows = 0;
    for (const file of files) {
      const t = file.tensors.get(name);
      if (!t) continue;
      if (t.dtype !== 'F32' || t.shape.slice(1).join() !== v.shape.slice(1).join()) {
        throw new CheckpointError(
          `${checkpoint.dir}: the shard of '${name}' is ${t.dtype} [${t.shape}], the model's rows are [${v.shape.slice(1)}]: it is damaged or from another model`,
        );
      }
      pieces.push(new Float32Array(t.data.slice().buffer));
      rows += t.shape[0] ?? 1;
    }
    if (rows !== (v.shape[0] ?? 1)) {
      throw new CheckpointError(
        `${checkpoint.dir}: the shards of '${name}' hold ${rows} rows, the model has ${v.shape[0] ?? 1}: a rank's file is missing or damaged`,
      );
    }
    const joined = new Float32Array(v.size);
    let o = 0;
    for (const p of pieces) {
      joined.set(p, o);
      o += p.length;
    }
    const value = tf.tensor(joined, v.shape);
    v.assign(value);
    value.dispose();
  }
}
