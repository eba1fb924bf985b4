/** Why a run was asked to stop: a signal, or the parent process (e.g. `pnpm`) that went away. */
export type StopCause = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'parent-exit';

/** Exit codes after the report is written: 128 + the signal number, as a shell reports a killed process. */
const EXIT_CODES: Record<StopCause, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129, 'parent-exit': 129 };

/**
 * The one place a run learns that it should stop. Signal handlers (and the parent watch) call `request`; the
 * training loop polls `requested` after each step, finishes that step, writes what it owes (report, checkpoint) and
 * returns; the CLI then exits with `exitCode`.
 */
export class StopRequest {
  private stopCause: StopCause | undefined;

  get requested(): boolean {
    return this.stopCause !== undefined;
  }

  /** The first cause asked for (later ones do not replace it). */
  get cause(): StopCause | undefined {
    return this.stopCause;
  }

  /** 128 + signal number for the cause (129 when the parent exited); 0 when no stop was asked for. */
  get exitCode(): number {
    return this.stopCause === undefined ? 0 : EXIT_CODES[this.stopCause];
  }

  /** Human words for the log line, e.g. `SIGTERM` or `parent process exited`. */
  describe(): string {
    return this.stopCause === 'parent-exit' ? 'parent process exited' : (this.stopCause ?? 'not stopped');
  }

  request(cause: StopCause): void {
    this.stopCause ??= cause;
  }
}

export interface StopOnSignalsOptions {
  /** How often to look for a changed parent pid (ms). The CLI must not outlive `pnpm kstar` killed under it. */
  parentPollMs?: number;
  /** Called on a second signal: the user wants out now (default `process.exit` with that signal's code). */
  exitNow?: (code: number) => void;
}

/**
 * SIGINT, SIGTERM and SIGHUP request a stop (finish the step, write the report); a second one exits at once. A
 * parent that exits (the pid of the parent changes: the process was re-parented) requests a stop too. Returns the
 * function that removes the handlers and the watch.
 */
export function stopOnSignals(stop: StopRequest, options: StopOnSignalsOptions = {}): () => void {
  const exitNow = options.exitNow ?? ((code: number) => process.exit(code));
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((signal) => {
    const handler = () => {
      if (stop.requested) exitNow(EXIT_CODES[signal]);
      else stop.request(signal);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid !== parent) stop.request('parent-exit');
  }, options.parentPollMs ?? 500);
  watch.unref();
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
    clearInterval(watch);
  };
}
