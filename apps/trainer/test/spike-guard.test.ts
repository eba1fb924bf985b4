import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, expect, it } from 'vitest';
import type { TrainReport } from '../src/index.ts';
import { runCli } from '../src/index.ts';
import { registerFaultyAdamw } from './cli-helpers.ts';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// AdamW that multiplies every weight by 10 in the update of step 5: from step 6 on, the loss spikes.
afterAll(
  registerFaultyAdamw('spike-at-6', (param, step) => {
    if (step === 5) param.assign(tf.tidy(() => tf.mul(param, 10)));
  }),
);

it('kstar train --spike-guard 2: the spiking steps keep their losses in the report, their updates are skipped', async () => {
  const report = join(mkdtempSync(join(tmpdir(), 'kstar-spike-')), 'r.json');
  const log: string[] = [];
  const io = {
    stdout: { write: () => true },
    stderr: { write: (s: string) => log.push(s) > 0, isTTY: false },
  };
  const args = [
    '--optimizer',
    'spike-at-6',
    '--backend',
    'cpu',
    '--steps',
    '8',
    '--batch',
    '2',
    '--seq',
    '16',
  ];
  expect(
    await runCli(['train', ...args, '--eval-every', '0', '--spike-guard', '2', '--report', report], io),
  ).toBe(0);
  const r = JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
  expect(r.losses).toHaveLength(8);
  const before = median(r.losses.slice(0, 5));
  expect(r.losses[5]!).toBeGreaterThan(2 * before); // the injected spike is real
  expect(r.spikeSkipped!.map((s) => s.step)).toEqual([6, 7, 8]);
  expect(r.spikeSkipped![0]).toEqual({ step: 6, loss: r.losses[5], median: before });
  expect(log.join('')).toMatch(/step 6: loss .* is over 2 × the recent median .*: update skipped/);
});
