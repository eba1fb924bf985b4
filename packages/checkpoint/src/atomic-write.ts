import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `data` to `path` so that the file is either the old one or the whole new one, never a mix or a truncation:
 * a temporary file in the same directory (same file system, so the rename is atomic), fsync, rename, fsync of the
 * directory. Two writers racing on one path each rename a whole file; the last rename wins.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const dir = dirname(path);
  const temporary = join(
    dir,
    `.${basename(path)}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`,
  );
  const fd = openSync(temporary, 'wx', 0o644);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let written = 0;
    while (written < bytes.byteLength) written += writeSync(fd, bytes, written, bytes.byteLength - written);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
  fsyncDirectory(dir);
}

/** Makes a rename inside `dir` durable. Some file systems refuse to open a directory for fsync: that is not an error. */
export function fsyncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // e.g. EISDIR/EPERM on some platforms: the rename already happened, durability is best-effort there.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** `fsyncDirectory` through libuv's thread pool (the main thread goes on training meanwhile). */
export async function fsyncDirectoryInBackground(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // as in fsyncDirectory: best-effort where a directory cannot be fsynced
  } finally {
    await handle?.close();
  }
}

/**
 * `writeFileAtomic` off the main thread: the same temporary file, fsync, rename and directory fsync, through
 * `fs.promises` (libuv's thread pool), so training can run while a large file is written. `data` may be the file's
 * parts: written in order by one gathering write (`writev`: one thread-pool task, no file-sized buffer built).
 * `whileWriting` runs on this thread once that write is under way (e.g. hashing the same bytes meanwhile).
 */
export async function writeFileAtomicInBackground(
  path: string,
  data: Uint8Array | readonly Uint8Array[],
  whileWriting?: () => void,
): Promise<void> {
  const dir = dirname(path);
  const temporary = join(
    dir,
    `.${basename(path)}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`,
  );
  const file = await open(temporary, 'wx', 0o644);
  try {
    const left = data instanceof Uint8Array ? [data] : [...data];
    while (left.length > 0) {
      // A short write (a full disk, more buffers than IOV_MAX) continues where it stopped.
      const writing = file.writev(left);
      whileWriting?.();
      whileWriting = undefined;
      let written = (await writing).bytesWritten;
      while (left.length > 0 && written >= left[0]!.byteLength) written -= left.shift()!.byteLength;
      if (written > 0) left[0] = left[0]!.subarray(written);
    }
    whileWriting?.(); // no bytes to write
    await file.sync();
  } catch (error) {
    await file.close();
    await rm(temporary, { force: true });
    throw error;
  }
  await file.close();
  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await fsyncDirectoryInBackground(dir);
}
