/** A step whose update the guard skipped: its loss and the median it was held to. */
export interface SkippedStep {
  step: number;
  loss: number;
  median: number;
}

/**
 * A loss-spike guard (the trainer's `--spike-guard FACTOR`; pass `check` as the engine's `skipUpdate`): a step whose loss exceeds FACTOR × the median of the recent accepted losses has its update
 * skipped (the instability seen in practice: a loss of 10.8 among losses of about 3). The first `minHistory` steps
 * are always accepted; skipped losses do not enter the window.
 */
export class SpikeGuard {
  readonly skipped: SkippedStep[] = [];
  private readonly recent: number[] = [];

  constructor(
    readonly factor: number,
    private readonly window = 20,
    private readonly minHistory = 5,
  ) {}

  /** True when the step's update must be skipped. */
  check(loss: number, step: number): boolean {
    if (this.recent.length >= this.minHistory) {
      const median = medianOf(this.recent);
      if (loss > this.factor * median) {
        this.skipped.push({ step, loss, median });
        return true;
      }
    }
    this.recent.push(loss);
    if (this.recent.length > this.window) this.recent.shift();
    return false;
  }
}

function medianOf(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
