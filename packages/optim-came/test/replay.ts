import type { OptimizerPlugin } from '@kstar/core';
import { type ReplayResult, replayGoldenOptimizer, replayGoldenPlugin } from '@kstar/testkit';
import { expect } from 'vitest';
import { CAME, cameFromReferenceHparams } from '../src/index.ts';
import { goldenCameRuns } from './helpers.ts';

export type { ReplayResult };

type Run = ReturnType<typeof goldenCameRuns>['runs'][number];

/**
 * Replays a golden CAME run through a K* optimizer plugin (init per param, update per step). `around` wraps each
 * update (webgpu: a validation error scope).
 */
export async function replayPlugin(
  plugin: OptimizerPlugin,
  run: Run,
  prefix: string,
  around: (update: () => void) => Promise<void> = async (u) => u(),
): Promise<ReplayResult> {
  const { golden } = goldenCameRuns();
  return replayGoldenPlugin(plugin, golden, run, prefix, { around });
}

/** Replays a golden CAME run through the drop-in `tf.train.Optimizer` (`applyGradients` by name). */
export async function replayOptimizer(opt: CAME, run: Run, prefix: string): Promise<ReplayResult> {
  const { golden } = goldenCameRuns();
  return replayGoldenOptimizer(opt, golden, run, prefix);
}

/** Every golden run through the drop-in CAME class on the active backend: within `tol` at every recorded step. */
export async function expectDropInMatchesGolden(backend: string, tol: number): Promise<void> {
  for (const run of goldenCameRuns().runs) {
    const opt = new CAME(cameFromReferenceHparams(run.hparams).hparams);
    const r = await replayOptimizer(opt, run, `${backend}-dropin`);
    console.log(
      `[optim-came] golden replay (CAME class, ${backend} kernel) worst rel err ${r.worst.toExponential(3)}`,
    );
    expect(r.worst).toBeLessThanOrEqual(tol);
    opt.dispose();
  }
}
