import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { adalomo, lomo } from '../src/index.ts';
import { AdaLomo64, numel, randn, relErr, rng, TOL } from './helpers.ts';
import type { Around } from './replay.ts';

const plain: Around = async (u) => u();

interface Case {
  label: string;
  shape: number[];
  clipValue: number | null;
  weightDecay: number;
  gradScale: number | null;
}

const CASES: Case[] = [
  { label: 'matrix', shape: [7, 5], clipValue: null, weightDecay: 0, gradScale: null },
  { label: 'matrix clipValue+wd+scale', shape: [6, 9], clipValue: 0.8, weightDecay: 0.1, gradScale: 0.4 },
  { label: 'rank 3 (K* extension)', shape: [3, 4, 5], clipValue: null, weightDecay: 0.05, gradScale: null },
  { label: 'rank 4', shape: [2, 2, 3, 4], clipValue: 1.2, weightDecay: 0, gradScale: null },
  { label: 'm = 1', shape: [1, 6], clipValue: null, weightDecay: 0, gradScale: null },
  { label: 'vector', shape: [11], clipValue: 0.5, weightDecay: 0.2, gradScale: 0.7 },
  { label: 'scalar', shape: [], clipValue: null, weightDecay: 0, gradScale: null },
  // > 256 elements: several partial sums on webgpu
  { label: 'large matrix', shape: [40, 33], clipValue: null, weightDecay: 0.01, gradScale: null },
];

/**
 * For each case, 4 steps through the native kernel and the fallback (AdaLomo) and one formula check (LOMO),
 * against the float64 references. Returns the worst error per case.
 */
export async function adalomoParity(
  around: Around = plain,
): Promise<{ label: string; native: number; fallback: number }[]> {
  const rows: { label: string; native: number; fallback: number }[] = [];
  for (const [k, c] of CASES.entries()) {
    const N = numel(c.shape);
    const next = rng(100 + k);
    const p0 = randn(next, N, 0.5);
    const ref = new AdaLomo64(c.shape, {
      lr: 0.05,
      eps1: 1e-30,
      eps2: 1e-3,
      clip_threshold: 1,
      decay_rate: -0.8,
      weight_decay: c.weightDecay,
      clip_grad_value: c.clipValue,
    });
    const pr = Float64Array.from(p0);
    const worst = { native: 0, fallback: 0 };
    const run = {} as Record<
      'native' | 'fallback',
      { p: tf.Variable; s: Record<string, tf.Tensor>; plugin: ReturnType<typeof adalomo> }
    >;
    for (const impl of ['native', 'fallback'] as const) {
      const plugin = adalomo({
        lr: 0.05,
        clipValue: c.clipValue,
        weightDecay: c.weightDecay,
        impl: impl === 'native' ? 'auto' : 'fallback',
      });
      plugin.gradScale = c.gradScale;
      const name = `parity-${k}-${impl}`;
      const p = tf.tidy(() => tf.variable(tf.tensor(p0.slice(), c.shape), true, name));
      run[impl] = { p, s: plugin.init({ name, shape: c.shape, role: 'matrix' }), plugin };
    }
    for (let t = 1; t <= 4; t++) {
      const g = randn(next, N, t === 2 ? 3 : 1); // a larger gradient once: update clipping kicks in
      ref.update(pr, g, t, c.gradScale ?? 1);
      for (const impl of ['native', 'fallback'] as const) {
        const { p, s, plugin } = run[impl];
        const gt = tf.tensor(g, c.shape);
        if (impl === 'native') await around(() => plugin.update(p, gt, s, t));
        else plugin.update(p, gt, s, t);
        gt.dispose();
        worst[impl] = Math.max(worst[impl], relErr(await p.data(), pr));
      }
    }
    for (const impl of ['native', 'fallback'] as const) {
      run[impl].p.dispose();
      tf.dispose(Object.values(run[impl].s));
    }
    rows.push({ label: c.label, ...worst });
  }
  return rows;
}

export function checkAdalomoParity(rows: { label: string; native: number; fallback: number }[]): void {
  for (const r of rows) {
    expect(r.native, `${r.label} native`).toBeLessThanOrEqual(TOL);
    expect(r.fallback, `${r.label} fallback`).toBeLessThanOrEqual(TOL);
  }
}

/** LOMO's update vs its formula in float64: clamp, scale, decay, lr; native and fallback. */
export async function lomoParity(around: Around = plain): Promise<number> {
  let worst = 0;
  const shape = [13, 21];
  const N = numel(shape);
  const next = rng(7);
  const p0 = randn(next, N);
  const g = randn(next, N, 2);
  const hp = { lr: 0.1, clipValue: 1.5, weightDecay: 0.3 };
  const scale = 0.6;
  const want = Float64Array.from(p0, (p, i) => {
    const gc = Math.min(hp.clipValue, Math.max(-hp.clipValue, g[i]!)) * scale;
    return p * (1 - hp.lr * hp.weightDecay) - hp.lr * gc;
  });
  for (const impl of ['auto', 'fallback'] as const) {
    const plugin = lomo({ ...hp, impl });
    plugin.gradScale = scale;
    const p = tf.tidy(() => tf.variable(tf.tensor(p0.slice(), shape), true, `lomo-parity-${impl}`));
    const gt = tf.tensor(g, shape);
    await around(() => plugin.update(p, gt, {}, 1));
    worst = Math.max(worst, relErr(await p.data(), want));
    tf.dispose([p, gt]);
  }
  return worst;
}
