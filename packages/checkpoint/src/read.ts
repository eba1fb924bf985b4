import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_FORMAT_VERSION,
  CheckpointError,
  MANIFEST,
  type Manifest,
  TRAINER_STATE,
} from './format.ts';
import { listCheckpoints, sha256 } from './write.ts';

/** A verified checkpoint: its manifest, the writer's state (`trainer.json`, parsed; `T` as the writer wrote it) and every file's bytes. */
export interface LoadedCheckpoint<T = Record<string, unknown>> {
  dir: string;
  manifest: Manifest;
  trainer: T;
  files: Map<string, Uint8Array>;
}

/** The reading process: its rank among `size` ranks (a sharded checkpoint is read per rank). */
export interface World {
  rank: number;
  size: number;
}
const SINGLE_PROCESS: World = { rank: 0, size: 1 };
/** One process reading every rank's files of any checkpoint (export and sample gather a ZeRO-3 model from its shards). */
export const EVERY_RANK = 'every-rank';

/**
 * Reads and verifies a checkpoint directory: the manifest's own checksum and format version, then every listed file's
 * presence, size and SHA-256. Any problem is a CheckpointError naming the file. A checkpoint written by N ranks and read
 * by N ranks (`world`): each rank reads the shared files and its own shards; read by another number of ranks (or with
 * EVERY_RANK): every rank's files, which the reader re-partitions.
 */
export function readCheckpoint<T = Record<string, unknown>>(
  dir: string,
  world: World | typeof EVERY_RANK = SINGLE_PROCESS,
): LoadedCheckpoint<T> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new CheckpointError(
      `checkpoint '${dir}' is not a directory: pass a step-N directory or --resume latest`,
    );
  }
  const manifestPath = join(dir, MANIFEST);
  if (!existsSync(manifestPath)) {
    throw new CheckpointError(
      `checkpoint file '${manifestPath}' is missing: the directory is not a (whole) checkpoint`,
    );
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch (e) {
    throw new CheckpointError(
      `checkpoint file '${manifestPath}' is not valid JSON (${(e as Error).message}): it is damaged`,
    );
  }
  if (manifest?.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(
      `checkpoint file '${manifestPath}' is not a K* checkpoint manifest (format ${JSON.stringify(manifest?.format)})`,
    );
  }
  if (!(Number.isInteger(manifest.formatVersion) && manifest.formatVersion >= 1)) {
    throw new CheckpointError(
      `checkpoint file '${manifestPath}' has formatVersion ${JSON.stringify(manifest.formatVersion)}: it is damaged`,
    );
  }
  if (manifest.formatVersion > CHECKPOINT_FORMAT_VERSION) {
    throw new CheckpointError(
      `checkpoint file '${manifestPath}' has format version ${manifest.formatVersion} (K* ${manifest.kstarVersion}); this K* reads version ${CHECKPOINT_FORMAT_VERSION} and older: upgrade K*`,
    );
  }
  const { manifestSha256, ...rest } = manifest;
  if (sha256(JSON.stringify(rest)) !== manifestSha256) {
    throw new CheckpointError(`checkpoint file '${manifestPath}' fails its own SHA-256: it is damaged`);
  }
  // Another rank count: this reader re-partitions the shards (the trainer's `reshard.ts`), so it needs every rank's.
  const onlyRank = world === EVERY_RANK || manifest.world.size !== world.size ? undefined : world.rank;
  const files = new Map<string, Uint8Array>();
  for (const f of manifest.files) {
    if (onlyRank !== undefined && f.rank !== undefined && f.rank !== onlyRank) continue; // another rank's shard
    const path = join(dir, f.path);
    if (!existsSync(path)) throw new CheckpointError(`checkpoint file '${path}' is missing`);
    const data = new Uint8Array(readFileSync(path));
    if (data.byteLength !== f.bytes) {
      throw new CheckpointError(
        `checkpoint file '${path}' has ${data.byteLength} bytes, the manifest says ${f.bytes}: it is truncated or damaged`,
      );
    }
    if (sha256(data) !== f.sha256) {
      throw new CheckpointError(`checkpoint file '${path}' fails its SHA-256 check: it is damaged`);
    }
    files.set(f.path, data);
  }
  const trainerBytes = files.get(TRAINER_STATE);
  if (!trainerBytes) throw new CheckpointError(`checkpoint '${dir}' lists no ${TRAINER_STATE}`);
  const trainer = JSON.parse(new TextDecoder().decode(trainerBytes)) as T;
  return { dir, manifest, trainer, files };
}

/**
 * The newest whole checkpoint of a save directory; damaged ones are skipped with a warning (`warn`). None whole: a
 * CheckpointError.
 */
export function readLatestCheckpoint<T = Record<string, unknown>>(
  saveDir: string,
  warn: (line: string) => void,
  world: World = SINGLE_PROCESS,
): LoadedCheckpoint<T> {
  const all = listCheckpoints(saveDir);
  if (all.length === 0) {
    throw new CheckpointError(
      `--resume latest: '${saveDir}' holds no step-N checkpoint: pass --save-dir of a run that saved, or a checkpoint directory`,
    );
  }
  for (const c of all) {
    try {
      return readCheckpoint<T>(c.path, world);
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      warn(`kstar: warning: skipping damaged checkpoint: ${e.message}`);
    }
  }
  throw new CheckpointError(
    `--resume latest: every checkpoint in '${saveDir}' is damaged (${all.length} tried)`,
  );
}
