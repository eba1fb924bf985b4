import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TrainReport } from '../src/index.ts';
import { cli } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-accum-'));
const TINY = [
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
  '--eval-every',
  '0',
  '--sample-tokens',
  '0',
  '--warmup',
  '1',
];

async function train(args: string[]): Promise<TrainReport> {
  const report = join(dir, `r${Math.random().toString(36).slice(2)}.json`);
  const r = await cli(['train', '--report', report, ...TINY, ...args]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
}

describe('--grad-accum K', () => {
  // The reference is an independent path: one engine step on the K-times batch (same rows: the sampler draws them in
  // the same order). Losses after the first step differ only if the updates differ. AdamW with a large eps is
  // nearly SGD, so a wrongly scaled mean gradient shows (Adam itself is scale-invariant).
  it.each([
    [
      'adamw (eps 1: gradient scale matters), full mode',
      ['--optimizer', 'adamw', '--optimizer-option', 'eps=1', '--lr', '0.5'],
    ],
    [
      'adam8bit + split24, checkpointed segments',
      ['--optimizer', 'adam8bit', '--master-weights', 'split24', '--activations', 'checkpoint'],
    ],
  ])('%s: 2 micro-batches of 2 rows equal one step on 4 rows', async (_, opts) => {
    const big = await train([...opts, '--steps', '3', '--batch', '4']);
    const accum = await train([...opts, '--steps', '3', '--batch', '2', '--grad-accum', '2']);
    expect(accum.losses).toHaveLength(3);
    for (let i = 0; i < 3; i++) expect(accum.losses[i]).toBeCloseTo(big.losses[i]!, 4);
    expect(accum.tokensPerSecond).toBeGreaterThan(0);
  });

  it('resumes exactly (checkpoints fall between optimizer steps)', async () => {
    const saveDir = join(dir, 'resume');
    const common = ['--optimizer', 'adamw', '--batch', '1', '--grad-accum', '3'];
    const whole = await train([
      ...common,
      '--steps',
      '4',
      '--save-dir',
      saveDir,
      '--save-every',
      '2',
      '--keep',
      '5',
    ]);
    const resumed = await train(['--resume', join(saveDir, 'step-00000002')]);
    expect(resumed.losses).toEqual(whole.losses.slice(2));
  });

  it.each([
    [['--optimizer', 'lomo'], /--grad-accum 2 cannot be used with --optimizer lomo: .*gradient release/],
    [['--optimizer', 'adalomo'], /--optimizer adalomo/],
    [['--sharding', 'zero1'], /--sharding zero1/],
    [['--grad-clip', '1'], /--grad-clip 1/],
    [['--grad-accum', '0'], /gradAccum/],
  ])('%j is refused before any work', async (flags, message) => {
    const report = join(dir, 'refused.json');
    const r = await cli(['train', '--report', report, '--grad-accum', '2', ...TINY, ...flags]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});
