import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import type { TrainReport } from '../src/index.ts';
import { checkOutputPath, checkStepFits, runCli } from '../src/index.ts';
import { capture, registerFaultyAdamw } from './cli-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-faults-'));

/** `kstar train` on cpu with the registered faulty optimizer `name`: its exit code, report and stderr writes. */
async function faultyRun(name: string, steps: number, reportName: string) {
  const report = join(dir, reportName);
  const { io, err } = capture();
  const args = [
    '--optimizer',
    name,
    '--backend',
    'cpu',
    '--steps',
    String(steps),
    '--batch',
    '2',
    '--seq',
    '16',
  ];
  const code = await runCli(['train', ...args, '--eval-every', '0', '--report', report], io);
  return { code, r: JSON.parse(readFileSync(report, 'utf8')) as TrainReport, err };
}

describe('a NaN loss at step k', () => {
  const NAN_STEP = 4;
  // AdamW that writes NaN into every weight in the update of step k − 1: step k's forward pass sees a NaN loss.
  afterAll(
    registerFaultyAdamw('nan-at-4', (param, step) => {
      if (step === NAN_STEP - 1) param.assign(tf.fill(param.shape, Number.NaN));
    }),
  );

  it('writes the report with the k − 1 losses before it and `failed`, exit 1, one line naming the step', async () => {
    const { code, r, err } = await faultyRun('nan-at-4', 10, 'nan.json');
    expect(code).toBe(1);
    expect(r.failed?.step).toBe(NAN_STEP);
    expect(r.failed?.reason).toMatch(/step 4: loss is NaN/);
    expect(r.steps).toBe(NAN_STEP - 1);
    expect(r.losses).toHaveLength(NAN_STEP - 1);
    for (const loss of r.losses) expect(Number.isFinite(loss)).toBe(true);
    expect(r.stoppedEarly).toBe(true);
    const last = err.at(-1)!;
    expect(last.trim().split('\n')).toHaveLength(1);
    expect(last).toMatch(/^kstar: step 4: loss is NaN.*the report has the 3 steps before it/);
  });
});

describe('any other error inside step k (a bug, a backend crash)', () => {
  afterAll(
    registerFaultyAdamw('throws-at-3', (_param, step) => {
      if (step === 3) throw new RangeError('injected failure');
    }),
  );

  it('still writes the report with the k − 1 steps before it, the reason and the stack, exit 1', async () => {
    const { code, r, err } = await faultyRun('throws-at-3', 6, 'throws.json');
    expect(code).toBe(1);
    expect(r.losses).toHaveLength(2);
    expect(r.failed?.step).toBe(3);
    expect(r.failed?.reason).toBe('step 3 failed: RangeError: injected failure');
    expect(r.failed?.stack).toMatch(/injected failure\n\s+at /);
    expect(err.at(-1)).toMatch(
      /^kstar: step 3 failed: RangeError: injected failure; the report has the 2 steps/,
    );
  });
});

describe('the memory check before step 1', () => {
  it('refuses one byte over the limit and passes at the limit', () => {
    const limit = { bytes: 1_000_000, source: 'a test limit' };
    expect(() => checkStepFits(1_000_000, 'cpu', { what: 'a step' }, limit)).not.toThrow();
    expect(() => checkStepFits(1_000_001, 'cpu', { what: 'a step' }, limit)).toThrow(
      /a step is predicted to need .*1,000,001 bytes.*--memory-budget/,
    );
  });
});

describe('checkOutputPath', () => {
  it('a file path: a new or existing file in a writable directory passes, and no probe is left behind', () => {
    const d = join(dir, 'paths');
    mkdirSync(d);
    writeFileSync(join(d, 'old.json'), '{}');
    expect(() => checkOutputPath(join(d, 'new.json'), 'file', '--report')).not.toThrow();
    expect(() => checkOutputPath(join(d, 'old.json'), 'file', '--report')).not.toThrow();
    expect(readdirSync(d)).toEqual(['old.json']);
  });

  it('a directory path (checkpoints): an existing directory or a new one in an existing parent passes', () => {
    const d = join(dir, 'ckpt');
    mkdirSync(d);
    expect(() => checkOutputPath(d, 'directory', '--save-dir')).not.toThrow();
    expect(() => checkOutputPath(join(d, 'run-1'), 'directory', '--save-dir')).not.toThrow();
    writeFileSync(join(d, 'a-file'), '');
    expect(() => checkOutputPath(join(d, 'a-file'), 'directory', '--save-dir')).toThrow(/is not a directory/);
    expect(() => checkOutputPath(join(d, 'no/run'), 'directory', '--save-dir')).toThrow(/does not exist/);
  });
});
