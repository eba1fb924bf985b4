import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainingEngine } from '@kstar/core';
import { createGPT } from '@kstar/gpt';
import { adamw } from '@kstar/optim-adamw';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import type { TrainReport } from '../src/index.ts';
import { parseTrainConfig, prepareRun } from '../src/index.ts';
import { cli, QUICK_RUN } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-options-'));

const readLog = (f: string) =>
  readFileSync(f, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; loss: number; lr: number; gradNorm?: number });

/** `kstar train` on QUICK_RUN for `steps` steps with `flags`: the lines of its --log (it must exit 0). */
async function quickRunLog(name: string, steps: number, flags: string[] = []) {
  const log = join(dir, `${name}.jsonl`);
  const r = await cli(['train', ...QUICK_RUN, '--steps', String(steps), ...flags, '--log', log]);
  expect(r.code, r.stderr).toBe(0);
  return readLog(log);
}

/** ‖g‖ of the first batch at the initial weights, in float64, from the engine's gradients (no clipping involved). */
async function firstGradNorm(): Promise<number> {
  const run = prepareRun(parseTrainConfig({ batch: 2, seq: 16 }));
  const model = createGPT(run.modelConfig, { seed: run.config.seed });
  const engine = new TrainingEngine(model, { optimizer: adamw({ lr: 1e-3 }) });
  const batch = run.dataset.trainBatch(2, 16);
  const { grads } = await engine.computeGradients(batch);
  let sum = 0;
  for (const g of grads.values()) for (const v of (await g.data()) as Float32Array) sum += v * v;
  tf.dispose([...grads.values(), batch.inputs, batch.targets]);
  engine.dispose();
  model.dispose();
  return Math.sqrt(sum);
}

describe('trainer options', () => {
  it('--log writes one JSON line a step, equal to the report; --grad-clip measures the global norm first', async () => {
    const report = join(dir, 'clip.json');
    const lines = await quickRunLog('clip', 3, ['--grad-clip', '0.5', '--report', report]);
    const rep = JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
    expect(lines.map((l) => l.step)).toEqual([1, 2, 3]);
    expect(lines.map((l) => l.loss)).toEqual(rep.losses);
    expect(lines[0]!.gradNorm).toBeCloseTo(await firstGradNorm(), 4);
    // Clipping changes the trajectory (the norm is far above 0.5), unclipped runs have no gradNorm.
    const p = await quickRunLog('plain', 3);
    expect(p[0]!.gradNorm).toBeUndefined();
    expect(p[0]!.loss).toBe(lines[0]!.loss);
    expect(p[2]!.loss).not.toBe(lines[2]!.loss);
  });

  it('--grad-clip with LOMO uses its own two-pass clipping', async () => {
    const lines = await quickRunLog('lomo', 2, ['--optimizer', 'lomo', '--grad-clip', '1']);
    expect(lines[0]!.gradNorm).toBeCloseTo(await firstGradNorm(), 4);
  });

  it('--eval-only reproduces the final validation loss of the run that saved the checkpoint', async () => {
    const saveDir = join(dir, 'eval');
    const report = join(dir, 'eval.json');
    const args = ['train', '--backend', 'cpu', '--batch', '2', '--seq', '16', '--sample-tokens', '0'];
    const r = await cli([
      ...args,
      '--steps',
      '2',
      '--eval-every',
      '2',
      '--eval-batches',
      '2',
      '--save-dir',
      saveDir,
      '--report',
      report,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const last = (JSON.parse(readFileSync(report, 'utf8')) as TrainReport).valLosses.at(-1)!;
    const out = join(dir, 'eval-only.json');
    const e = await cli([
      'train',
      '--resume',
      join(saveDir, 'step-00000002'),
      '--eval-only',
      '--report',
      out,
    ]);
    expect(e.code, e.stderr).toBe(0);
    const only = JSON.parse(readFileSync(out, 'utf8')) as TrainReport;
    expect(only.steps).toBe(0);
    expect(only.valLosses).toEqual([{ step: 2, loss: last.loss }]);
  });

  it('--help lists every optimizer; --version prints the version', async () => {
    const h = await cli(['train', '--help']);
    for (const name of ['adamw', 'adafactor', 'came', 'adam8bit', 'lomo', 'adalomo', 'lazy-adagrad', 'lion'])
      expect(h.stdout).toContain(name);
    const v = await cli(['--version']);
    expect(v.stdout).toMatch(/^kstar \d+\.\d+\.\d+\n$/);
  });
});
