import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDirectory, writeFileAtomic } from '../atomic-write.ts';
import { KSTAR_VERSION } from '../version.ts';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_FORMAT_VERSION,
  MANIFEST,
  type Manifest,
  type ManifestFile,
  STEP_DIR,
  stepDirName,
} from './format.ts';

export const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

/** The manifest with its own checksum (over its JSON without `manifestSha256`). */
export function sealManifest(m: Omit<Manifest, 'manifestSha256'>): Manifest {
  return { ...m, manifestSha256: sha256(JSON.stringify(m)) };
}

/**
 * Writes a checkpoint directory whole or not at all: every file into a temporary directory (each fsynced), the
 * manifest last, the directory fsynced, then renamed to `step-NNNNNNNN` and the save directory fsynced. A process
 * killed at any moment leaves either the previous checkpoints only or the new one complete (plus a `.tmp-*`
 * directory that the next save removes). Then only the newest `keep` checkpoints are kept. Returns the path.
 */
export function writeCheckpoint(
  saveDir: string,
  step: number,
  files: ReadonlyArray<CheckpointFile>,
  keep: number,
): string {
  const tmp = openTemporaryDir(saveDir, `.tmp-${stepDirName(step)}-${process.pid}`);
  return commitCheckpoint(saveDir, step, tmp, writeFiles(tmp, files), 1, keep);
}

/** A file of a checkpoint: its path in the directory, its bytes, and the rank whose shard it is (if one). */
export interface CheckpointFile {
  path: string;
  data: Uint8Array;
  rank?: number;
}

/** Creates `saveDir/name` (the checkpoint being written), first removing leftovers of runs killed while saving. */
export function openTemporaryDir(saveDir: string, name: string): string {
  mkdirSync(saveDir, { recursive: true });
  for (const old of readdirSync(saveDir)) {
    if (old.startsWith('.tmp-step-')) rmSync(join(saveDir, old), { recursive: true, force: true });
  }
  const tmp = join(saveDir, name);
  mkdirSync(tmp);
  return tmp;
}

/** Writes `files` into `dir` (each atomically, fsynced) and returns their manifest entries. */
export function writeFiles(dir: string, files: ReadonlyArray<CheckpointFile>): ManifestFile[] {
  return files.map((f) => {
    writeFileAtomic(join(dir, f.path), f.data);
    return {
      path: f.path,
      bytes: f.data.byteLength,
      sha256: sha256(f.data),
      ...(f.rank !== undefined ? { rank: f.rank } : {}),
    };
  });
}

/**
 * Seals the temporary directory `tmp` holding the `listed` files of `worldSize` ranks: the manifest last, the
 * directory fsynced, renamed to `step-NNNNNNNN`, the save directory fsynced, old checkpoints pruned. Returns the path.
 */
export function commitCheckpoint(
  saveDir: string,
  step: number,
  tmp: string,
  listed: ManifestFile[],
  worldSize: number,
  keep: number,
): string {
  const name = stepDirName(step);
  const manifest = sealManifest({
    format: CHECKPOINT_FORMAT,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    kstarVersion: KSTAR_VERSION,
    step,
    createdAt: new Date().toISOString(),
    world: { size: worldSize },
    files: listed,
  });
  writeFileAtomic(join(tmp, MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`);
  fsyncDirectory(tmp);
  const final = join(saveDir, name);
  if (existsSync(final)) {
    // The same step saved again (a resumed run): swap, so a whole checkpoint of this step exists at every moment.
    const old = join(saveDir, `.tmp-${name}-old-${process.pid}`);
    renameSync(final, old);
    renameSync(tmp, final);
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(tmp, final);
  }
  fsyncDirectory(saveDir);
  pruneCheckpoints(saveDir, keep);
  return final;
}

/** Step directories of a save directory, newest first. */
export function listCheckpoints(saveDir: string): Array<{ step: number; path: string }> {
  if (!existsSync(saveDir)) return [];
  return readdirSync(saveDir)
    .map((n) => ({ n, m: STEP_DIR.exec(n) }))
    .filter((e) => e.m !== null)
    .map((e) => ({ step: Number(e.m![1]), path: join(saveDir, e.n) }))
    .sort((a, b) => b.step - a.step);
}

/** Removes all but the newest `keep` checkpoints. */
export function pruneCheckpoints(saveDir: string, keep: number): void {
  for (const old of listCheckpoints(saveDir).slice(keep)) rmSync(old.path, { recursive: true, force: true });
}
