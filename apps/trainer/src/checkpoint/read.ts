import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_FORMAT_VERSION,
  CheckpointError,
  MANIFEST,
  type Manifest,
  TRAINER_STATE,
  type TrainerState,
} from './format.ts';
import { listCheckpoints, sha256 } from './write.ts';

/** A verified checkpoint: its manifest, trainer state and every file's bytes. */
export interface LoadedCheckpoint {
  dir: string;
  manifest: Manifest;
  trainer: TrainerState;
  files: Map<string, Uint8Array>;
}

/**
 * Reads and verifies a checkpoint directory: the manifest's own checksum and format version, then every listed file's
 * presence, size and SHA-256. Any problem is a CheckpointError naming the file.
 */
export function readCheckpoint(dir: string): LoadedCheckpoint {
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
  if (manifest.world.size !== 1) {
    throw new CheckpointError(
      `checkpoint '${dir}' was written by ${manifest.world.size} ranks; this trainer resumes single-process checkpoints only`,
    );
  }
  const files = new Map<string, Uint8Array>();
  for (const f of manifest.files) {
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
  const trainer = JSON.parse(new TextDecoder().decode(trainerBytes)) as TrainerState;
  return { dir, manifest, trainer, files };
}

/**
 * The newest whole checkpoint of a save directory; damaged ones are skipped with a warning (`warn`). None whole: a
 * CheckpointError.
 */
export function readLatestCheckpoint(saveDir: string, warn: (line: string) => void): LoadedCheckpoint {
  const all = listCheckpoints(saveDir);
  if (all.length === 0) {
    throw new CheckpointError(
      `--resume latest: '${saveDir}' holds no step-N checkpoint: pass --save-dir of a run that saved, or a checkpoint directory`,
    );
  }
  for (const c of all) {
    try {
      return readCheckpoint(c.path);
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      warn(`kstar: warning: skipping damaged checkpoint: ${e.message}`);
    }
  }
  throw new CheckpointError(
    `--resume latest: every checkpoint in '${saveDir}' is damaged (${all.length} tried)`,
  );
}
