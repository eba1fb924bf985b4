import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listCheckpoints, sha256 } from '@kstar/checkpoint';
import { expect, it } from 'vitest';
import { MODEL_FILE, optimizerFile, TRAINER_STATE, type TrainerState } from '../src/checkpoint/format.ts';
import { readCheckpoint, readLatestCheckpoint } from '../src/checkpoint/read.ts';
import type { TrainReport } from '../src/index.ts';
import { runCli } from '../src/index.ts';
import { CPU_RUN } from './run-cli.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kstar-kill-'));
const STEPS = 6;
const KILLS = Number(process.env.KSTAR_KILLS ?? 20);
const ARGS = ['train', ...CPU_RUN, '--steps', String(STEPS)];

const quiet = { stdout: { write: () => true }, stderr: { write: () => true, isTTY: false } };

/** The newest step directory in `saveDir` (a checkpoint appears there only whole, by rename), or 0. */
function newestStepDir(saveDir: string): number {
  if (!existsSync(saveDir)) return 0;
  let newest = 0;
  for (const name of readdirSync(saveDir)) {
    const m = /^step-(\d+)$/.exec(name);
    if (m) newest = Math.max(newest, Number(m[1]));
  }
  return newest;
}

/**
 * Runs `kstar train` in a child process and sends it SIGKILL `delayMs` after checkpoint `after` appears (after 0:
 * after its first training line). Arming on a checkpoint, not on wall time, spreads the kills over the whole run
 * however slow the machine is.
 */
function killedRun(saveDir: string, after: number, delayMs: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        '--conditions=@kstar/source',
        '--import',
        'tsx',
        bin,
        ...ARGS,
        '--save-dir',
        saveDir,
        '--save-every',
        '1',
        '--keep',
        '2',
      ],
      { cwd: root, env: { ...process.env, CI: 'true' } },
    );
    let started = false;
    let armed = false;
    const arm = () => {
      armed = true;
      clearInterval(poll);
      setTimeout(() => child.kill('SIGKILL'), delayMs);
    };
    const poll = setInterval(() => {
      if (!armed && started && newestStepDir(saveDir) >= after) arm();
    }, 10);
    child.stderr.on('data', (d: Buffer) => {
      if (!started && d.toString().includes('kstar: tiny')) started = true;
    });
    child.on('close', () => {
      clearInterval(poll);
      resolve();
    });
  });
}

/** A seeded generator for the kill moments (so a failure can be replayed). */
function moments(n: number, maxMs: number, seed = 20261202): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * maxMs);
  });
}

it(`kill -9 at ${KILLS} moments of a run saving every step: the newest checkpoint always loads and resumes exactly`, async () => {
  // The uninterrupted run, keeping every step's checkpoint as the reference.
  const refDir = join(dir, 'reference');
  const report = join(dir, 'reference.json');
  expect(
    await runCli(
      [...ARGS, '--save-dir', refDir, '--save-every', '1', '--keep', '100', '--report', report],
      quiet,
    ),
  ).toBe(0);
  const whole = JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
  const refFile = (step: number, f: string) =>
    sha256(readFileSync(join(refDir, `step-${String(step).padStart(8, '0')}`, f)));
  // Kill i lands after checkpoint i mod STEPS appears, plus up to one step's time (about 1 s here): the kills cover
  // every step, mid-compute and mid-save, on a quiet or a loaded machine.
  const delays = moments(KILLS, 1200);
  const newest: number[] = [];
  let resumedFrom = 0;
  for (const [i, delay] of delays.entries()) {
    const saveDir = join(dir, `kill-${i}`);
    const after = i % STEPS;
    await killedRun(saveDir, after, delay);
    const all = listCheckpoints(saveDir);
    newest.push(all[0]?.step ?? 0);
    expect(newest[i]).toBeGreaterThanOrEqual(after);
    if (all.length === 0) continue; // killed before the first save completed
    // The newest checkpoint is whole (no warning, nothing skipped) and holds exactly the reference's state.
    const warnings: string[] = [];
    const latest = readLatestCheckpoint(saveDir, (l) => warnings.push(l));
    expect(warnings).toEqual([]);
    expect(latest.trainer.step).toBe(all[0]!.step);
    for (const c of all) readCheckpoint(c.path); // every kept one is whole
    const step = latest.trainer.step;
    expect(sha256(latest.files.get(MODEL_FILE)!)).toBe(refFile(step, MODEL_FILE));
    expect(sha256(latest.files.get(optimizerFile(0))!)).toBe(refFile(step, optimizerFile(0)));
    const t = JSON.parse(new TextDecoder().decode(latest.files.get(TRAINER_STATE)!)) as TrainerState;
    expect(t.losses).toEqual(whole.losses.slice(0, step));
    // Resume (in this process) from a few of them and compare the remaining losses.
    if (step < STEPS && resumedFrom < 3) {
      resumedFrom++;
      const out = join(dir, `resumed-${i}.json`);
      expect(
        await runCli(['train', '--resume', 'latest', '--save-dir', saveDir, '--report', out], quiet),
      ).toBe(0);
      const r = JSON.parse(readFileSync(out, 'utf8')) as TrainReport;
      expect(r.losses).toEqual(whole.losses.slice(step));
    }
  }
  // The kills did land at different points of the run.
  expect(new Set(newest).size).toBeGreaterThan(2);
  expect(resumedFrom).toBeGreaterThan(0);
}, 900_000);
