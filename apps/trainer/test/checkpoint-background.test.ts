import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProgressBar } from '@kstar/train-loop';
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { MODEL_FILE, optimizerFile, stepDirName, TRAINER_STATE } from '../src/checkpoint/format.ts';
import type { TrainReport } from '../src/index.ts';
import { parseTrainConfig, prepareRun } from '../src/index.ts';
import { train } from '../src/train.ts';
import { cli } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-bg-save-'));
const quiet = () => new ProgressBar({ write: () => true, isTTY: false });
const RUN = {
  backend: 'cpu',
  batch: 2,
  seq: 16,
  evalEvery: 0,
  sampleTokens: 0,
  steps: 4,
  saveEvery: 2,
  keep: 10,
};

/**
 * Gives the cpu backend a batched reader like backend-cuda's pinned staging (`readToPinnedHost`): views that are
 * overwritten with NaN bytes when released, as reused staging memory would be by the next save. A checkpoint that
 * read its copies after releasing them would hold NaN weights.
 */
function installPoisoningStagedReader(): { outstanding: () => number; reads: () => number; remove(): void } {
  const backend = tf.backend() as unknown as Record<string, unknown> & {
    readSync(id: object): ArrayLike<number>;
  };
  let outstanding = 0;
  let reads = 0;
  backend.readToPinnedHost = (ids: object[]) => {
    reads++;
    outstanding++;
    const views = ids.map((id) => {
      const v = backend.readSync(id) as Float32Array | Int32Array;
      return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
    });
    let released = false;
    return {
      views,
      release() {
        if (released) return;
        released = true;
        outstanding--;
        for (const v of views) v.fill(0xff);
      },
    };
  };
  return {
    outstanding: () => outstanding,
    reads: () => reads,
    remove: () => delete backend.readToPinnedHost,
  };
}

it('a checkpoint is written while the next step trains (its copies staged), and resuming from it equals the uninterrupted run', async () => {
  const saveDir = join(dir, 'order');
  await tf.setBackend('cpu');
  const staged = installPoisoningStagedReader();
  const events: string[] = [];
  let stepAfterSave!: () => void;
  const stepAfterSaveDone = new Promise<void>((resolve) => {
    stepAfterSave = resolve;
  });
  const log = quiet();
  const update = log.update.bind(log);
  log.update = (p, force) => {
    events.push(`step ${p.step} trained`);
    if (p.step === 3) stepAfterSave();
    update(p, force);
  };
  const report = await train(prepareRun(parseTrainConfig({ ...RUN, saveDir })), {
    log,
    checkpointHooks: {
      async beforeCommit(tmp, step) {
        if (step !== 2) return;
        // Every file is written into the temporary directory; the checkpoint does not exist yet.
        expect(readdirSync(tmp)).toEqual(
          expect.arrayContaining([MODEL_FILE, optimizerFile(0), TRAINER_STATE]),
        );
        expect(existsSync(join(saveDir, stepDirName(2)))).toBe(false);
        // Held until step 3 has trained: a save that blocked the loop would never get there (the fallback ends the
        // wait so that such a run fails on the order below instead of hanging).
        let fallback: NodeJS.Timeout | undefined;
        await Promise.race([
          stepAfterSaveDone,
          new Promise((resolve) => {
            fallback = setTimeout(resolve, 20_000);
          }),
        ]);
        clearTimeout(fallback);
        events.push('step-2 checkpoint renamed');
      },
    },
  });
  expect(events.indexOf('step 3 trained')).toBeGreaterThanOrEqual(0);
  expect(events.indexOf('step 3 trained')).toBeLessThan(events.indexOf('step-2 checkpoint renamed'));
  expect(report.checkpoints?.saved).toEqual([2, 4].map((s) => join(saveDir, stepDirName(s))));
  expect(report.checkpoints?.writeSeconds).toBeGreaterThan(0);
  // The end of the run waited for the last write: both checkpoints are whole.
  for (const s of [2, 4]) expect(existsSync(join(saveDir, stepDirName(s), 'manifest.json'))).toBe(true);
  // Both saves read through the staged reader (weights and optimizer state each), and returned every copy.
  expect(staged.reads()).toBe(4);
  expect(staged.outstanding()).toBe(0);
  staged.remove();

  const out = join(dir, 'resumed.json');
  const r = await cli(['train', '--resume', join(saveDir, stepDirName(2)), '--report', out]);
  expect(r.code, r.stderr).toBe(0);
  const resumed = JSON.parse(readFileSync(out, 'utf8')) as TrainReport;
  expect(resumed.losses).toEqual(report.losses.slice(2));
});

it('a background write that fails ends the run with the checkpoint named', async () => {
  const saveDir = join(dir, 'fails');
  const run = train(prepareRun(parseTrainConfig({ ...RUN, saveDir })), {
    log: quiet(),
    checkpointHooks: {
      beforeCommit(_, step) {
        if (step === 2) throw new Error('ENOSPC: no space left on device');
      },
    },
  });
  await expect(run).rejects.toThrow(
    `writing checkpoint '${join(saveDir, stepDirName(2))}' failed: ENOSPC: no space left on device`,
  );
  expect(existsSync(join(saveDir, stepDirName(2)))).toBe(false);
});
