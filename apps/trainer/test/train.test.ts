import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TrainReport } from '../src/index.ts';
import { runCli } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-train-'));

async function trainReport(args: string[]): Promise<{ report: TrainReport; stdout: string }> {
  const path = join(dir, `r${Math.random().toString(36).slice(2)}.json`);
  const out: string[] = [];
  const io = {
    stdout: { write: (s: string) => out.push(s) > 0 },
    stderr: { write: () => true, isTTY: false },
  };
  const code = await runCli(['train', '--backend', 'wasm', '--report', path, ...args], io);
  expect(code).toBe(0);
  return { report: JSON.parse(readFileSync(path, 'utf8')) as TrainReport, stdout: out.join('') };
}

describe('kstar train on tiny (wasm)', () => {
  it.each(['full', 'segmented'])('writes a measured report (%s mode)', async (mode) => {
    const { report, stdout } = await trainReport([
      '--mode',
      mode,
      '--steps',
      '30',
      '--batch',
      '4',
      '--seq',
      '64',
      '--eval-every',
      '15',
      '--eval-batches',
      '2',
    ]);
    expect(report.version).toBe(1);
    expect(report.backend).toBe('wasm');
    expect(report.steps).toBe(30);
    expect(report.losses).toHaveLength(30);
    expect(report.valLosses.map((v) => v.step)).toEqual([15, 30]);
    // Learning: the mean of the last 5 losses is well below the first loss (≈ ln 256 = 5.55 at init).
    const first = report.losses[0]!;
    const tail = report.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
    expect(first).toBeGreaterThan(5);
    expect(tail).toBeLessThan(first - 1);
    expect(report.memory.paramBytes).toBe(4 * report.model.params);
    expect(report.memory.optimizerStateBytes).toBe(8 * report.model.params);
    const ratio = report.memory.predictedPeakBytes / report.memory.peakBytes;
    expect(
      ratio,
      `predicted ${report.memory.predictedPeakBytes} vs measured ${report.memory.peakBytes}`,
    ).toBeGreaterThanOrEqual(0.75);
    expect(ratio).toBeLessThanOrEqual(1.25);
    expect(report.tokensPerSecond).toBeGreaterThan(0);
    expect(stdout).toMatch(/memory ledger/);
    expect(stdout).toMatch(/trained 30 steps/);
  });
});
