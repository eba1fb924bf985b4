import type { TrainReport } from '@kstar/trainer/internal';
import {
  type PreparedRun,
  ProgressBar,
  parseTrainConfig,
  prepareRun,
  type TrainConfig,
  train,
} from '@kstar/trainer/internal';

/** Where a benchmark writes its progress: process.stderr, or a test's recorder. */
export type Err = NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean };

/** One benchmark run: `kstar train` with these settings, no validation and no warm-up, progress on `stderr`. */
export async function benchRun(
  settings: Record<string, unknown>,
  stderr: Err,
  extra: Pick<PreparedRun, 'pinPlan'> = {},
): Promise<{ config: TrainConfig; run: PreparedRun; report: TrainReport }> {
  const config = parseTrainConfig({ ...settings, evalEvery: 0, warmup: 0 }, 'bench');
  const run = { ...prepareRun(config), ...extra };
  const report = await train(run, { log: new ProgressBar(stderr) });
  return { config, run, report };
}
