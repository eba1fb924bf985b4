import { closeSync, existsSync, fsyncSync, openSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InputError } from '@kstar/core';

/** What K* will put at an output path: one file (a report, a replay) or a directory it fills (checkpoints). */
export type OutputKind = 'file' | 'directory';

/**
 * Refuses, before any work, an output path K* could not write at the end: a missing or non-directory parent, an
 * existing directory where a file goes (or the reverse), a device or other special file (`/dev/full`), a
 * directory where files cannot be created (read-only, `/proc`, `/sys`, no permission) or a full file system.
 * The check creates, writes one byte to, fsyncs and removes a probe file in the directory the atomic writer will
 * use, so it asks the file system itself (permission bits do not stop root; `/proc` does). `what` names the flag
 * in the message (e.g. `--report`).
 */
export function checkOutputPath(path: string, kind: OutputKind, what: string): void {
  if (path.trim() === '' || path.includes('\0')) {
    throw new InputError(`${what} ${JSON.stringify(path)} is not a path: pass a file path`, 'E_OUTPUT');
  }
  const abs = resolve(path);
  const existing = statOrUndefined(abs);
  if (kind === 'file' && existing && !existing.isFile()) {
    throw new InputError(
      existing.isDirectory()
        ? `${what} '${path}' is a directory: pass the path of a file to write, e.g. ${join(path, 'report.json')}`
        : `${what} '${path}' is not a regular file (a device, socket or pipe): pass the path of a file to write`,
      'E_OUTPUT',
    );
  }
  if (kind === 'directory' && existing && !existing.isDirectory()) {
    throw new InputError(
      `${what} '${path}' exists and is not a directory: pass a directory path`,
      'E_OUTPUT',
    );
  }
  // The directory that receives the file (or the directory's parent when K* creates it).
  const dir = kind === 'directory' && existing ? abs : dirname(abs);
  const parent = statOrUndefined(dir);
  if (!parent) {
    throw new InputError(
      `${what} '${path}': directory '${dir}' does not exist: create it first (mkdir -p '${dir}') or pass another path`,
      'E_OUTPUT',
    );
  }
  if (!parent.isDirectory()) {
    throw new InputError(`${what} '${path}': '${dir}' is not a directory: pass another path`, 'E_OUTPUT');
  }
  probeWritable(dir, path, what);
}

function statOrUndefined(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Creates, writes, fsyncs and removes a probe file in `dir`: what the atomic writer will do there. */
function probeWritable(dir: string, path: string, what: string): void {
  const probe = join(dir, `.kstar-write-probe.${process.pid}.${Math.random().toString(36).slice(2)}`);
  let fd: number | undefined;
  try {
    fd = openSync(probe, 'wx', 0o600);
    writeSync(fd, Buffer.from('k'));
    fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new InputError(
      `${what} '${path}': cannot write in '${dir}' (${code}: ${reason(code)}): pass a path in a writable directory`,
      'E_OUTPUT',
    );
  } finally {
    if (fd !== undefined) closeSync(fd);
    if (existsSync(probe)) rmSync(probe, { force: true });
  }
  let free: number | undefined;
  try {
    free = statfsSync(dir).bavail;
  } catch {
    free = undefined; // a file system without statfs: the probe write above is the check
  }
  if (free === 0) {
    throw new InputError(
      `${what} '${path}': the file system of '${dir}' is full (0 free blocks): free space or pass a path on another disk`,
      'E_OUTPUT',
    );
  }
}

function reason(code: string): string {
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
    case 'EDQUOT':
      return 'no space left';
    case 'ENOENT':
      return 'files cannot be created there';
    default:
      return 'the file system refused a test file';
  }
}
