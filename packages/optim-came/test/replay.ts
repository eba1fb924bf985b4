import type { OptimizerPlugin } from '@kstar/core';
import {
  emptyReplayResult,
  finishReplay,
  goldenVariables,
  initGoldenStates,
  type ReplayResult,
  recordGoldenErrors,
  replayGoldenOptimizer,
} from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { CAME, cameFromReferenceHparams } from '../src/index.ts';
import { goldenCameRuns } from './helpers.ts';

export type { ReplayResult };

type Run = ReturnType<typeof goldenCameRuns>['runs'][number];

/**
 * Replays a golden CAME run through a K* optimizer plugin (init per param, update per step). `around` wraps each
 * step's updates (webgpu: a validation error scope).
 */
export async function replayPlugin(
  plugin: OptimizerPlugin,
  run: Run,
  prefix: string,
  around: (update: () => void) => Promise<void> = async (u) => u(),
): Promise<ReplayResult> {
  const { golden } = goldenCameRuns();
  const vars = goldenVariables(golden, run, prefix);
  const states = initGoldenStates(plugin, golden, run, prefix);
  const out = emptyReplayResult();
  for (let t = 1; t <= golden.grads.length; t++) {
    const grads = run.params_used.map((name) =>
      tf.tensor(golden.grads[t - 1]![name]!, golden.shapes[name]!, 'float32'),
    );
    await around(() => {
      run.params_used.forEach((name, i) => {
        plugin.update(vars[name]!, grads[i]!, states[name]!, t);
      });
    });
    tf.dispose(grads);
    await recordGoldenErrors(run, vars, t, out);
  }
  for (const s of Object.values(states)) tf.dispose(Object.values(s));
  return finishReplay(vars, out);
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
