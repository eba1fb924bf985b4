import type { OptimizerPlugin } from '@kstar/core';
import { callUntyped, type ReplayResult, replayGoldenPlugin } from '@kstar/testkit';
import { adalomo, adalomoFromReferenceHparams, lomo, lomoFromReferenceHparams } from '../src/index.ts';
import { loadGolden } from './helpers.ts';

/** Wraps one update (webgpu: a validation error scope); the default just runs it. */
export type Around = (update: () => void) => Promise<void>;
const plain: Around = async (u) => u();

export type { ReplayResult };

/** The golden run indices this package replays: 1 (`sgd`, as LOMO) and 7 (`adalomo`). */
export const SGD_RUN = 1;
export const ADALOMO_RUN = 7;

export function pluginForRun(index: number, impl: 'auto' | 'fallback' = 'auto'): OptimizerPlugin {
  const run = loadGolden().runs[index]!;
  if (index === SGD_RUN && run.optimizer === 'sgd') {
    const p = callUntyped(lomoFromReferenceHparams, run.hparams);
    return impl === 'auto' ? p : lomoWithImpl(p.hparams.lr);
  }
  if (index === ADALOMO_RUN && run.optimizer === 'adalomo') {
    const p = callUntyped(adalomoFromReferenceHparams, run.hparams);
    return impl === 'auto' ? p : adalomoWithImpl(run.hparams);
  }
  throw new Error(`golden run ${index} is ${run.optimizer}, not one this package replays`);
}

const lomoWithImpl = (lr: number) => lomo({ lr, impl: 'fallback' });
const adalomoWithImpl = (h: Record<string, unknown>) =>
  adalomo({
    lr: h.lr as number,
    eps1: h.eps1 as number,
    eps2: h.eps2 as number,
    clipThreshold: h.clip_threshold as number,
    decayRate: h.decay_rate as number,
    weightDecay: h.weight_decay as number,
    lossScale: h.loss_scale as number,
    impl: 'fallback',
  });

/** Replays golden run `index` through `plugin` (init per param, update per step) on the active backend. */
export async function replay(
  plugin: OptimizerPlugin,
  index: number,
  prefix: string,
  around: Around = plain,
): Promise<ReplayResult> {
  const golden = loadGolden();
  return replayGoldenPlugin(plugin, golden, golden.runs[index]!, prefix, { around });
}

export function formatReplay(label: string, r: ReplayResult): string {
  const steps = Object.entries(r.errors)
    .map(
      ([s, e]) =>
        `step ${s}: ${Object.entries(e)
          .map(([n, v]) => `${n} ${v.toExponential(2)}`)
          .join(' ')}`,
    )
    .join('; ');
  return `[optim-lomo] ${label}: worst ${r.worst.toExponential(2)} at ${r.worstAt} (${steps})`;
}
