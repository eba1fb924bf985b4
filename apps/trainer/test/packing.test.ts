import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProgressBar } from '@kstar/train-loop';
import { describe, expect, it } from 'vitest';
import { parseTrainConfig } from '../src/config.ts';
import { prepareRun, train } from '../src/train.ts';
import { useCalibrationFixture } from './calibration-fixture.ts';
import { cli, trainReport } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-packing-'));
// The plans' stage times, measured once (fixtures/packing-calibration.json says where): no calibration in the test,
// and the same plans on every machine.
useCalibrationFixture(dir, 'packing-calibration.json');
const quiet = { write: () => true, isTTY: false };

/** 60 documents separated by blank lines: every third about 50 bytes long, the others about 10. */
const corpus = join(dir, 'docs.txt');
const words = ['the', 'jury', 'said', 'of', 'a', 'city', 'report', 'that', 'was', 'held', 'in', 'court'];
writeFileSync(
  corpus,
  Array.from({ length: 60 }, (_, i) => {
    const target = i % 3 === 0 ? 50 : 10;
    let doc = `d${i}`;
    for (let k = i; doc.length < target; k += 7) doc += ` ${words[k % words.length]}`;
    return doc;
  }).join('\n\n'),
);

const STEPS = 3;
const BUDGET = 1.5 * 2 ** 20;
const flags = {
  backend: 'cpu',
  evalEvery: 0,
  warmup: 0,
  lr: 3e-3,
  sampleTokens: 0,
  activations: 'checkpoint,mst',
  layers: 2,
  dModel: 32,
  heads: 2,
  context: 64,
  batch: 2,
  steps: STEPS,
  corpus,
  packDocuments: true,
  lengthBuckets: '16,64',
  memoryBudget: '1.5MiB',
};

async function run(pinPlan?: readonly string[], extra: Record<string, unknown> = {}) {
  const prepared = prepareRun(parseTrainConfig({ ...flags, ...extra }, 'test'));
  return train(pinPlan ? { ...prepared, pinPlan } : prepared, { log: new ProgressBar(quiet) });
}

describe('--pack-documents --length-buckets', () => {
  it('re-plans per length bucket under the budget, with the losses of the same batches at a fixed plan', async () => {
    // The batches' lengths, from a packer of its own (the same seed and corpus).
    const packer = prepareRun(parseTrainConfig(flags, 'test')).packer!;
    const lengths = Array.from({ length: STEPS }, () => packer.nextWindows(2).T);
    expect(new Set(lengths)).toEqual(new Set([16, 64])); // both buckets occur

    const a = await run();
    // A plan at the start for the first batch's bucket, then one at each change of bucket.
    const changes = lengths.flatMap((T, i) => (i > 0 && T !== lengths[i - 1] ? [i + 1] : []));
    expect(a.plans!.map((p) => [p.step, p.reason])).toEqual([
      [1, 'start'],
      ...changes.map((s) => [s, 'length-bucket']),
    ]);
    expect(a.memory.peakBytes).toBeLessThanOrEqual(BUDGET); // the largest step's measured peak
    // The same batches at one fixed plan (the one made for the long bucket): the same function, the same losses.
    const long = a.plans!.find((p) => lengths[p.step - 1] === 64)!;
    const short = a.plans!.find((p) => p.choices.join() !== long.choices.join());
    expect(short).toBeDefined(); // the plans differ, or the comparison below proves nothing
    const b = await run(long.choices);
    expect(b.plans!.every((p) => p.choices.join() === long.choices.join())).toBe(true);
    expect(b.losses.length).toBe(STEPS);
    for (const [i, l] of a.losses.entries()) expect(l).toBeCloseTo(b.losses[i]!, 4);
  });

  it('with --grad-accum 2: the micro-batches of a step share its bucket, re-plans per bucket, under the budget', async () => {
    // The step's bucket is its first micro-batch's; the second is drawn at the same length (packer of its own).
    const packer = prepareRun(parseTrainConfig(flags, 'test')).packer!;
    const lengths = Array.from({ length: STEPS }, () => {
      const T = packer.nextWindows(2).T;
      packer.nextWindows(2, T);
      return T;
    });
    expect(new Set(lengths)).toEqual(new Set([16, 64])); // both buckets occur, so there is a re-plan to check
    const a = await run(undefined, { gradAccum: 2 });
    const changes = lengths.flatMap((T, i) => (i > 0 && T !== lengths[i - 1] ? [i + 1] : []));
    expect(a.plans!.map((p) => [p.step, p.reason])).toEqual([
      [1, 'start'],
      ...changes.map((s) => [s, 'length-bucket']),
    ]);
    expect(a.memory.predicted['grads:accumulated']).toBeGreaterThan(0); // the sum the planner budgets for
    expect(a.memory.peakBytes).toBeLessThanOrEqual(BUDGET);
    // Pinned to the last plan: the same batches, the same function, the same losses.
    const last = a.plans!.at(-1)!;
    const b = await run(last.choices, { gradAccum: 2 });
    for (const [i, l] of a.losses.entries()) expect(l).toBeCloseTo(b.losses[i]!, 4);
  });

  it('resumes a packed run exactly: the checkpoint keeps the packer position', async () => {
    const args = ['--backend', 'cpu', '--layers', '1', '--d-model', '32', '--heads', '2', '--context', '64'];
    args.push('--batch', '2', '--eval-every', '0', '--sample-tokens', '0', '--warmup', '0', '--steps', '2');
    args.push('--corpus', corpus, '--pack-documents', '--length-buckets', '16,64');
    const saves = join(dir, 'saves');
    const whole = await trainReport([...args, '--save-dir', saves, '--save-every', '1']);
    const resumed = await trainReport([...args, '--resume', join(saves, 'step-00000001')]);
    // Step 2 again, on the batch after step 1's (a packer back at the start would give other losses).
    expect(resumed.losses).toEqual(whole.losses.slice(1));
  });

  it('kstar plan prints one plan per bucket', async () => {
    const args = [
      'plan',
      '--backend',
      'cpu',
      '--layers',
      '2',
      '--d-model',
      '32',
      '--heads',
      '2',
      '--context',
      '64',
    ];
    args.push('--batch', '2', '--activations', 'checkpoint,mst', '--memory-budget', '1.5MiB');
    const r = await cli([...args, '--corpus', corpus, '--pack-documents', '--length-buckets', '16,64']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /plan at step 1 \(start\).*\n[\s\S]*plan at step 1 \(length-bucket: bucket ≤ 64 \(was ≤ 16\)\)/,
    );
  });

  it('refuses buckets that are not ascending, and buckets without packing, naming the value', async () => {
    const bad = await cli(['train', '--pack-documents', '--length-buckets', '64,32', '--corpus', corpus]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/length bucket 32 \(of 64,32\)/);
    expect(() => prepareRun(parseTrainConfig({ ...flags, lengthBuckets: '16,128' }, 'test'))).toThrow(
      /--length-buckets 16,128: the longest bucket 128 is longer than the model's context 64/,
    );
    expect(() => prepareRun(parseTrainConfig({ ...flags, packDocuments: false }, 'test'))).toThrow(
      /--length-buckets 16,64 needs --pack-documents/,
    );
  });
});
