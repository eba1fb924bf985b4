import type { StagedModel } from '@kstar/core';
import {
  FactoredMoment64,
  type GoldenOptimizers,
  loadGoldenOptimizers,
  numel,
  randn32 as randn,
  rng,
  TIED_TOY_NAMES,
  toyStagedModel,
} from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';

export { relErr } from '@kstar/testkit';
export { numel, randn, rng };

/** The golden trajectories of `fixtures/golden/optimizers.json` (float64). */
export type Golden = GoldenOptimizers<Record<string, number | boolean | null>>;
export const loadGolden = (): Golden => loadGoldenOptimizers<Record<string, number | boolean | null>>();

export const TOL = 1e-5;

/** AdaLomo hyper-parameters under the reference's names. */
export interface AdaLomoRef {
  lr: number;
  eps1: number;
  eps2: number;
  clip_threshold: number;
  decay_rate: number;
  weight_decay: number;
  clip_grad_value: number | null;
}

/**
 * An independent float64 AdaLomo written line by line from `lomo_optim.AdaLomo.fuse_update` (not from src/),
 * with HF Adafactor's rank > 2 rule (last two dims factored) so it can check K*'s extension.
 */
export class AdaLomo64 {
  readonly moment: FactoredMoment64;
  constructor(
    readonly shape: number[],
    readonly hp: AdaLomoRef,
  ) {
    this.moment = new FactoredMoment64(shape);
  }

  /** `step` = the reference's step_num (1-based); `clipCoef` = the global-norm coefficient (or 1). */
  update(p: Float64Array, g0: ArrayLike<number>, step: number, clipCoef = 1): void {
    const hp = this.hp;
    const N = p.length;
    const g = Float64Array.from(g0);
    if (hp.clip_grad_value != null) {
      const c = hp.clip_grad_value;
      for (let i = 0; i < N; i++) g[i] = Math.min(c, Math.max(-c, g[i]!));
    }
    for (let i = 0; i < N; i++) g[i] = g[i]! * clipCoef;
    const update = this.moment.scaledGradient(g, 1 - step ** hp.decay_rate, hp.eps1);
    let su = 0;
    for (let i = 0; i < N; i++) su += update[i]! ** 2;
    const div = Math.max(Math.sqrt(su) / Math.sqrt(N) / hp.clip_threshold, 1);
    for (let i = 0; i < N; i++) update[i] = update[i]! / div;
    let pn = 0;
    for (let i = 0; i < N; i++) pn += p[i]! * p[i]!;
    const lr = hp.lr * Math.max(hp.eps2, Math.sqrt(pn) / Math.sqrt(N));
    if (hp.weight_decay > 0) for (let i = 0; i < N; i++) p[i] = p[i]! * (1 - lr * hp.weight_decay);
    for (let i = 0; i < N; i++) p[i] = p[i]! - lr * update[i]!;
  }
}

let instances = 0;

/**
 * A tiny GPT-shaped staged model: embedding (gather), `depth` tanh blocks with residuals, a head (tied to the
 * embedding, or its own matrix `H`), mean cross-entropy. Values come from a seeded JS PRNG (same on every backend).
 */
export function toyModel(opts: {
  vocab: number;
  dim: number;
  depth: number;
  seed: number;
  tied: boolean;
}): StagedModel {
  const { vocab, dim, depth, seed, tied } = opts;
  const id = `lomo-toy${++instances}`;
  const next = rng(seed);
  const variables = new Map<string, tf.Variable>();
  const mk = (name: string, shape: number[], scale: number) =>
    variables.set(
      name,
      tf.tidy(() => tf.variable(tf.tensor(randn(next, numel(shape), scale), shape), true, `${id}/${name}`)),
    );
  mk('E', [vocab, dim], 0.5);
  for (let i = 0; i < depth; i++) {
    mk(`W${i}`, [dim, dim], 0.3);
    mk(`b${i}`, [dim], 0.1);
  }
  if (!tied) mk('H', [vocab, dim], 0.5);
  return toyStagedModel({ vocab, depth, variables, names: { ...TIED_TOY_NAMES, head: tied ? 'E' : 'H' } });
}

export function toyBatch(vocab: number, B: number, T: number, seed: number) {
  const next = rng(seed);
  const ids = (n: number) => Int32Array.from({ length: n }, () => Math.floor(next() * vocab));
  return { inputs: tf.tensor(ids(B * T), [B, T], 'int32'), targets: tf.tensor(ids(B * T), [B, T], 'int32') };
}

export function disposeModel(m: StagedModel): void {
  for (const v of m.variables.values()) v.dispose();
}

export async function snapshot(m: StagedModel): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [n, v] of m.variables) out[n] = Float32Array.from(await v.data());
  return out;
}
