import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import type { TrainReport } from '../src/index.ts';
import { saveEvery } from './quick-run.ts';
import { CPU_RUN, trainReport as train } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-resume-'));

/**
 * Steps of the uninterrupted run and the step it is resumed from. The figure is 30 = 10 + 20;
 * `KSTAR_RESUME_STEPS=30 KSTAR_RESUME_AT=10` runs it (about 1 s a tiny step on this shared 2-core machine, so CI
 * runs 6 = 2 + 4: the same code path, every step after the resume compared bit for bit).
 */
const STEPS = Number(process.env.KSTAR_RESUME_STEPS ?? 6);
const AT = Number(process.env.KSTAR_RESUME_AT ?? 2);

/** The uninterrupted run of STEPS steps, saving every AT steps into `saveDir`. */
const wholeRun = (args: string[], saveDir: string): Promise<TrainReport> =>
  train([...args, '--steps', String(STEPS), ...saveEvery(saveDir, AT)]);

/** `kstar train --resume` from the run's step-AT checkpoint. */
const resumeAtStep = (saveDir: string, args: string[] = []): Promise<TrainReport> =>
  train(['--resume', join(saveDir, `step-${String(AT).padStart(8, '0')}`), ...args]);

const CASES: Array<[string, string[]]> = [
  ['adamw', ['--optimizer', 'adamw']],
  ['adam8bit + split24', ['--optimizer', 'adam8bit', '--master-weights', 'split24']],
  ['adafactor', ['--optimizer', 'adafactor']],
  ['came', ['--optimizer', 'came']],
  ['lion', ['--optimizer', 'lion']],
  ['lomo', ['--optimizer', 'lomo']],
  ['adalomo', ['--optimizer', 'adalomo']],
  ['lazy-adagrad', ['--optimizer', 'lazy-adagrad']],
  ['adamw + gradient partitioning', ['--optimizer', 'adamw', '--update-chunk-bytes', '65536']],
];

describe.each([
  ['no activation strategy', []],
  ['--activations checkpoint,mst', ['--activations', 'checkpoint,mst']],
])('resume is exact on cpu (%s)', (_, acts) => {
  it.each(CASES)(
    `%s: ${STEPS} uninterrupted steps equal ${AT} + resume + ${STEPS - AT}, bit for bit`,
    async (name, opts) => {
      const saveDir = join(dir, `${name.replace(/\W+/g, '-')}-${acts.length}`);
      const common = [...CPU_RUN, ...opts, ...acts];
      const whole = await wholeRun([...common, '--keep', '100'], saveDir);
      expect(whole.losses).toHaveLength(STEPS);
      const tensorsBefore = tf.memory().numTensors;
      const resumed = await resumeAtStep(saveDir);
      // Nothing from the resumed run stays alive.
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      expect(resumed.resumed?.step).toBe(AT);
      expect(resumed.losses).toEqual(whole.losses.slice(AT));
    },
  );
});

it('resume is exact on wasm (adam8bit + split24, checkpoint,mst)', async () => {
  const saveDir = join(dir, 'wasm');
  const common = ['--backend', 'wasm', '--batch', '2', '--seq', '16', '--eval-every', '0'];
  const opts = ['--optimizer', 'adam8bit', '--master-weights', 'split24', '--activations', 'checkpoint,mst'];
  const whole = await wholeRun([...common, ...opts], saveDir);
  const resumed = await resumeAtStep(saveDir, ['--backend', 'wasm']);
  expect(resumed.losses).toEqual(whole.losses.slice(AT));
});
