import { KstarError } from '@kstar/core';
import type { WritePhases } from './write.ts';

/**
 * Runs checkpoint writes in the background, one at a time: `start` first waits for the write in flight (so host
 * memory holds at most one checkpoint's copy besides the one being taken), then starts the next and returns. A write
 * that fails is not lost: `throwIfFailed` (at the next step boundary) and `finish` (at the end of the run) throw it,
 * naming the checkpoint, exit code 1.
 */
export class BackgroundCheckpointWriter {
  private inFlight: Promise<void> | undefined;
  private failure: KstarError | undefined;
  /** Seconds the writes took in the background (encode, hash, write, fsync, rename, prune), summed. */
  writeSeconds = 0;

  /** Seconds spent in `idle` waiting for a write (the next save's or the run's end), summed. */
  waitSeconds = 0;

  /** Where each finished write's time went (what its writer reports through `CheckpointHooks.written`). */
  readonly writes: WritePhases[] = [];

  /** Waits for the write in flight, if any (its failure is kept for `throwIfFailed`). */
  async idle(): Promise<void> {
    if (!this.inFlight) return;
    const t0 = performance.now();
    await this.inFlight;
    this.waitSeconds += (performance.now() - t0) / 1000;
  }

  /** Waits for the write in flight, then starts `write` (the checkpoint `path`) without waiting for it. */
  async start(path: string, write: () => Promise<unknown>): Promise<void> {
    await this.idle();
    this.throwIfFailed();
    const t0 = performance.now();
    // Started on a later turn of the event loop: a write's synchronous first part (concatenating the file, the hash's
    // copy of it) would otherwise run in a microtask before the caller's loop resumes, inside its blocked time.
    this.inFlight = new Promise<void>((resolve) => setImmediate(resolve)).then(write).then(
      () => {
        this.writeSeconds += (performance.now() - t0) / 1000;
        this.inFlight = undefined;
      },
      (e: unknown) => {
        this.failure = new KstarError(
          'E_CHECKPOINT_WRITE',
          `writing checkpoint '${path}' failed: ${e instanceof Error ? e.message : String(e)}: check the space and permissions of --save-dir (the checkpoints before it are whole)`,
        );
        this.inFlight = undefined;
      },
    );
  }

  /** Throws the failure of a finished write, once. */
  throwIfFailed(): void {
    const f = this.failure;
    this.failure = undefined;
    if (f) throw f;
  }

  /** The end of the run (or a stop): waits for the write in flight and throws its failure. */
  async finish(): Promise<void> {
    await this.idle();
    this.throwIfFailed();
  }
}
