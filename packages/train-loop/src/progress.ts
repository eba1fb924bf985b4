/** `1h05m`, `3m07s`, `42s`: a duration for a person (`--` when unknown). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  if (h > 0) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

export interface ProgressState {
  step: number;
  total: number;
  loss: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
  valLoss?: number;
}

/**
 * A one-line progress bar: redrawn in place on a terminal, printed every `every` steps otherwise (logs, CI).
 */
export class ProgressBar {
  private readonly tty: boolean;
  private readonly out: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean };
  private readonly every: number;
  private lastLen = 0;

  constructor(
    out: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean } = process.stderr,
    every = 10,
  ) {
    this.out = out;
    this.tty = Boolean(out.isTTY) && process.env.CI !== 'true';
    this.every = every;
  }

  static line(p: ProgressState, width = 24): string {
    const frac = p.total > 0 ? p.step / p.total : 0;
    const filled = Math.round(frac * width);
    const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}`;
    const eta = p.step > 0 ? (p.elapsedSeconds / p.step) * (p.total - p.step) : Number.NaN;
    const val = p.valLoss !== undefined ? ` | val ${p.valLoss.toFixed(4)}` : '';
    return `step ${String(p.step).padStart(String(p.total).length)}/${p.total} [${bar}] loss ${p.loss.toFixed(4)}${val} | ${Math.round(p.tokensPerSecond).toLocaleString('en-US')} tok/s | ETA ${formatDuration(eta)}`;
  }

  update(p: ProgressState, force = false): void {
    const text = ProgressBar.line(p);
    if (this.tty) {
      this.out.write(`\r${text}${' '.repeat(Math.max(0, this.lastLen - text.length))}`);
      this.lastLen = text.length;
    } else if (force || p.step === 1 || p.step % this.every === 0 || p.step === p.total) {
      this.out.write(`${text}\n`);
    }
  }

  /** A message on its own line (validation results, warnings) without breaking the bar. */
  log(message: string): void {
    if (this.tty && this.lastLen > 0) {
      this.out.write(`\r${' '.repeat(this.lastLen)}\r`);
      this.lastLen = 0;
    }
    this.out.write(`${message}\n`);
  }

  done(): void {
    if (this.tty && this.lastLen > 0) this.out.write('\n');
    this.lastLen = 0;
  }
}
