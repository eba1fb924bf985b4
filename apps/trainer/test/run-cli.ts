import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runCli, type TrainReport } from '../src/index.ts';

/** Runs the CLI in this process and returns its exit code and what it wrote. */
export async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, {
    stdout: { write: (s: string) => out.push(s) > 0 },
    stderr: { write: (s: string) => err.push(s) > 0, isTTY: false },
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

export { CPU_RUN, QUICK_RUN } from './quick-run.ts';

/** A one-block GPT (d 32, 2 heads) on cpu at seq 16: a few steps take about a second. */
export const TINY_MODEL = [
  '--backend',
  'cpu',
  '--layers',
  '1',
  '--d-model',
  '32',
  '--heads',
  '2',
  '--seq',
  '16',
];

let reports: string | undefined;

/** `kstar train ARGS --report FILE` in this process: fails the test (with its stderr) unless it exits 0. */
export async function trainReport(args: string[]): Promise<TrainReport> {
  reports ??= mkdtempSync(join(tmpdir(), 'kstar-reports-'));
  const report = join(reports, `r${Math.random().toString(36).slice(2)}.json`);
  const r = await cli(['train', '--report', report, ...args]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
}
