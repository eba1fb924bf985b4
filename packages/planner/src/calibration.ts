/**
 * Measured op times, cached per machine and shape: the planner's time costs come from a short calibration at the
 * start of a run; a later run on the same machine with the same shapes reads them back instead of measuring again.
 */
export interface CalibrationData {
  readonly version: 1;
  /** key (machine | backend | shape | what) → milliseconds. */
  readonly entries: Record<string, number>;
}

export class Calibration {
  private readonly entries: Map<string, number>;
  /** Keys measured in this process (not read from the cache). */
  readonly measured: string[] = [];

  constructor(data?: CalibrationData) {
    if (data !== undefined && data.version !== 1) {
      throw new Error(`calibration cache version ${String(data.version)} is unknown: delete the cache file`);
    }
    this.entries = new Map(Object.entries(data?.entries ?? {}));
  }

  /** The cached time of `key`, or `measure()`'s (then cached). */
  async time(key: string, measure: () => number | Promise<number>): Promise<number> {
    const hit = this.entries.get(key);
    if (hit !== undefined) return hit;
    const ms = await measure();
    if (!(ms >= 0 && Number.isFinite(ms))) {
      throw new Error(`calibration of '${key}' measured ${ms} ms: a time must be finite and ≥ 0`);
    }
    this.entries.set(key, ms);
    this.measured.push(key);
    return ms;
  }

  /** The cached time of `key`, if any. */
  get(key: string): number | undefined {
    return this.entries.get(key);
  }

  toJSON(): CalibrationData {
    return {
      version: 1,
      entries: Object.fromEntries([...this.entries].sort(([a], [b]) => a.localeCompare(b))),
    };
  }
}

/** Median of `reps` timings of `fn` (after one warm-up run), in milliseconds; `fn` waits for its results. */
export async function medianMs(fn: () => void | Promise<void>, reps = 3): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
