import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  fsyncDirectory,
  fsyncDirectoryInBackground,
  writeFileAtomic,
  writeFileAtomicInBackground,
} from './atomic-write.ts';
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

/** `sha256` computed in libuv's thread pool (WebCrypto's digest), leaving the main thread to training. */
export const sha256InBackground = async (data: Uint8Array) =>
  Buffer.from(await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>)).toString('hex');

/** How saved checkpoints are kept and signed: the newest `keep` stay; `kstarVersion` names the writer's version. */
export interface SaveOptions {
  keep: number;
  kstarVersion: string;
}

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
  options: SaveOptions,
): string {
  const tmp = openTemporaryDir(saveDir, `.tmp-${stepDirName(step)}-${process.pid}`);
  return commitCheckpoint(saveDir, step, tmp, writeFiles(tmp, files), 1, options);
}

/**
 * A checkpoint file whose bytes are still to be encoded (`encode` runs off the training loop): one buffer, or the
 * file's parts in order (`encodePayloadPartsInBackground`), written one after the other.
 */
export interface PendingCheckpointFile {
  path: string;
  encode(): Promise<Uint8Array | readonly Uint8Array[]>;
  rank?: number;
}

/** Lets a test watch a checkpoint written in the background, and a report see where its time went. */
export interface CheckpointHooks {
  /** Every file is in the temporary directory `tmp` (fsynced), the manifest and the rename are next. */
  beforeCommit?(tmp: string, step: number): Promise<void> | void;
  /** The write ended: seconds of each phase (see `WritePhases`). */
  written?(phases: WritePhases): void;
}

/**
 * Where a background write's time went, in seconds: `encode`; `hash`: hashing a file on the main thread (while the
 * thread pool writes it); `file` (write + fsync + rename); each the longest file's (files run at once); `commit`: manifest, renames, fsyncs and pruning; `total`: start to end.
 */
export interface WritePhases {
  step: number;
  encode: number;
  hash: number;
  file: number;
  commit: number;
  total: number;
}

const since = (t0: number) => (performance.now() - t0) / 1000;

/** Phases of a write of `step` that has not started. */
export const emptyPhases = (step: number): WritePhases => ({
  step,
  encode: 0,
  hash: 0,
  file: 0,
  commit: 0,
  total: 0,
});

/**
 * The SHA-256 of `parts` one after the other, in one pass on this thread (about 65 ms for 130 MB at 2 GB/s), without
 * building one file-sized buffer. Not in slices between event-loop turns: a training loop yields about once a step, so
 * a sliced hash of a checkpoint written during training took 25-35 steps on the H200 (longer than --save-every 25),
 * and the next save waited for it.
 */
export function sha256OfParts(parts: readonly Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

/**
 * Encodes, writes (each atomically: a file that exists is whole) and hashes `files` into `dir`, all at once: encoding
 * and writing in libuv's thread pool (a file's parts in one gathering write), hashing on this thread meanwhile
 * (`sha256OfParts`); returns their manifest entries and adds the longest of each phase to `phases`.
 */
export async function writePendingFiles(
  dir: string,
  files: ReadonlyArray<PendingCheckpointFile>,
  phases: WritePhases = emptyPhases(0),
): Promise<ManifestFile[]> {
  const timed = async <T>(phase: 'encode' | 'file', work: Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const out = await work;
    phases[phase] = Math.max(phases[phase], since(t0));
    return out;
  };
  return Promise.all(
    files.map(async (f): Promise<ManifestFile> => {
      const data = await timed('encode', f.encode());
      const parts = data instanceof Uint8Array ? [data] : data;
      let digest = '';
      await timed(
        'file',
        writeFileAtomicInBackground(join(dir, f.path), parts, () => {
          const t0 = performance.now();
          digest = sha256OfParts(parts);
          phases.hash = Math.max(phases.hash, since(t0));
        }),
      );
      return {
        path: f.path,
        bytes: parts.reduce((n, p) => n + p.byteLength, 0),
        sha256: digest,
        ...(f.rank !== undefined ? { rank: f.rank } : {}),
      };
    }),
  );
}

/**
 * `writeCheckpoint` for a checkpoint already copied to host memory, run while training goes on: each file encoded
 * (deflate) and written (fsync) in libuv's thread pool and hashed as it is written, all files at once; then sealed as `writeCheckpoint`
 * seals it (manifest, fsync, rename, prune), so it is as atomic. Returns the path.
 */
export async function writeCheckpointInBackground(
  saveDir: string,
  step: number,
  files: ReadonlyArray<PendingCheckpointFile>,
  options: SaveOptions,
  hooks: CheckpointHooks = {},
): Promise<string> {
  const start = performance.now();
  const phases = emptyPhases(step);
  const tmp = openTemporaryDir(saveDir, `.tmp-${stepDirName(step)}-${process.pid}`);
  const listed = await writePendingFiles(tmp, files, phases);
  await hooks.beforeCommit?.(tmp, step);
  const t0 = performance.now();
  const path = await commitCheckpointInBackground(saveDir, step, tmp, listed, 1, options);
  phases.commit = since(t0);
  phases.total = since(start);
  hooks.written?.(phases);
  return path;
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
  options: SaveOptions,
): string {
  const name = stepDirName(step);
  writeFileAtomic(join(tmp, MANIFEST), manifestText(step, listed, worldSize, options));
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
  pruneCheckpoints(saveDir, options.keep);
  return final;
}

/** `commitCheckpoint` with its file work (manifest, fsyncs, renames, pruning) in libuv's thread pool. */
export async function commitCheckpointInBackground(
  saveDir: string,
  step: number,
  tmp: string,
  listed: ManifestFile[],
  worldSize: number,
  options: SaveOptions,
): Promise<string> {
  const name = stepDirName(step);
  await writeFileAtomicInBackground(
    join(tmp, MANIFEST),
    new TextEncoder().encode(manifestText(step, listed, worldSize, options)),
  );
  const final = join(saveDir, name);
  if (existsSync(final)) {
    const old = join(saveDir, `.tmp-${name}-old-${process.pid}`);
    await rename(final, old);
    await rename(tmp, final);
    await rm(old, { recursive: true, force: true });
  } else {
    await rename(tmp, final);
  }
  await fsyncDirectoryInBackground(saveDir);
  await Promise.all(
    listCheckpoints(saveDir)
      .slice(options.keep)
      .map((old) => rm(old.path, { recursive: true, force: true })),
  );
  return final;
}

/** The sealed manifest of a checkpoint's `listed` files, as written. */
function manifestText(step: number, listed: ManifestFile[], worldSize: number, options: SaveOptions): string {
  const manifest = sealManifest({
    format: CHECKPOINT_FORMAT,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    kstarVersion: options.kstarVersion,
    step,
    createdAt: new Date().toISOString(),
    world: { size: worldSize },
    files: listed,
  });
  return `${JSON.stringify(manifest, null, 1)}\n`;
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
