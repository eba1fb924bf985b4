import type { OptimizerPlugin } from '@kstar/core';
import { callUntyped } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { adalomo, adalomoFromReferenceHparams, lomo, lomoFromReferenceHparams } from '../src/index.ts';
import { loadGolden, relErr } from './helpers.ts';

/** Wraps one update (webgpu: a validation error scope); the default just runs it. */
export type Around = (update: () => void) => Promise<void>;
const plain: Around = async (u) => u();

export interface ReplayResult {
  /** errors[step][param] = max|p − p_ref| / RMS(p_ref). */
  errors: Record<number, Record<string, number>>;
  worst: number;
  worstAt: string;
}

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
  const run = golden.runs[index]!;
  const vars: Record<string, tf.Variable> = {};
  const states: Record<string, Record<string, tf.Tensor>> = {};
  for (const name of run.params_used) {
    vars[name] = tf.tidy(() =>
      tf.variable(tf.tensor(golden.init[name]!, golden.shapes[name]!, 'float32'), true, `${prefix}/${name}`),
    );
    const shape = golden.shapes[name]!;
    states[name] = plugin.init({
      name: `${prefix}/${name}`,
      shape,
      role: name === 'E' ? 'embedding' : shape.length >= 2 ? 'matrix' : 'vector',
    });
  }
  const out: ReplayResult = { errors: {}, worst: 0, worstAt: '' };
  const last = Math.max(...run.after.map((a) => a.step));
  for (let t = 1; t <= last; t++) {
    for (const name of run.params_used) {
      const g = tf.tensor(golden.grads[t - 1]![name]!, golden.shapes[name]!, 'float32');
      await around(() => plugin.update(vars[name]!, g, states[name]!, t));
      g.dispose();
    }
    const rec = run.after.find((a) => a.step === t);
    if (rec == null) continue;
    out.errors[t] = {};
    for (const name of run.params_used) {
      const e = relErr(await vars[name]!.data(), rec.params[name]!);
      out.errors[t]![name] = e;
      if (e > out.worst) {
        out.worst = e;
        out.worstAt = `step ${t}, ${name}`;
      }
    }
  }
  for (const name of run.params_used) {
    vars[name]!.dispose();
    tf.dispose(Object.values(states[name]!));
  }
  return out;
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
