import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { came, cameFromReferenceHparams, cameWhich } from '../src/index.ts';
import { came64Init, came64Step, goldenCameRuns, type Hp64, numel, randn, relErr, rng } from './helpers.ts';
import { replayPlugin } from './replay.ts';

/** Shapes for native-vs-fallback parity: rank 0–3, rows of 1, a vector longer than the 256-thread reduction. */
export const PARITY_SHAPES: number[][] = [[], [7], [1000], [64, 300], [3, 40, 70], [1, 33], [33, 1]];
export const PARITY_HP: Hp64 = {
  lr: 5e-3,
  beta1: 0.9,
  beta2: 0.99,
  beta3: 0.999,
  eps1: 1e-30,
  eps2: 1e-16,
  clipThreshold: 1,
  weightDecay: 0.1,
};
export const PARITY_STEPS = 5;
/** float32 storage over 5 steps: ~1e-6; the update itself moves p by ≫ this. */
export const PARITY_TOL = 1e-5;

export interface ParityRow {
  shape: number[];
  nativeVsRef: number;
  fallbackVsRef: number;
  nativeVsFallback: number;
  /** max |Δp| / RMS(p0): shows the update is not trivially small. */
  moved: number;
}

/**
 * PARITY_STEPS CAME steps through the active backend's native kernel and through the fallback, side by side with
 * the float64 reference. `around` wraps each native update (webgpu: a validation error scope).
 */
export async function cameParity(
  shape: number[],
  seed: number,
  around: (update: () => void, step: number) => Promise<void> = async (u) => u(),
): Promise<ParityRow> {
  const n = numel(shape);
  const next = rng(seed);
  const p0 = Float32Array.from(randn(next, n, 0.5));
  const mk = (tag: string) => tf.tidy(() => tf.variable(tf.tensor(p0, shape), true, `parity-${tag}/${seed}`));
  const pn = mk('native');
  const pf = mk('fallback');
  const native = came(PARITY_HP);
  const fallback = came({ ...PARITY_HP, impl: 'fallback' });
  const sn = native.init({ name: pn.name, shape, role: 'other' });
  const sf = fallback.init({ name: pf.name, shape, role: 'other' });
  const ref = Float64Array.from(p0);
  const s64 = came64Init(shape);
  for (let t = 1; t <= PARITY_STEPS; t++) {
    const g = Float32Array.from(randn(next, n, 0.1 * t));
    if (t === 2) g.fill(0, 0, Math.min(n, 40)); // zero gradients: the ε1 path (whole rows of the matrices)
    const gt = tf.tensor(g, shape);
    expect(cameWhich(pn, gt, sn)).toBe('native');
    const buffers = tf.memory().numDataBuffers;
    const ids = [pn.dataId, ...Object.values(sn).map((x) => x.dataId)];
    await around(() => native.update(pn, gt, sn, t), t);
    expect(tf.memory().numDataBuffers, 'in place: no buffer created or left behind').toBe(buffers);
    // The kernel wrote into the existing buffers (the fallback's `assign` would swap in new ones).
    const after = [pn.dataId, ...Object.values(sn).map((x) => x.dataId)];
    for (let i = 0; i < ids.length; i++) expect(after[i]).toBe(ids[i]);
    fallback.update(pf, gt, sf, t);
    came64Step(ref, g, s64, PARITY_HP);
    gt.dispose();
  }
  const [vn, vf] = [Float32Array.from(await pn.data()), Float32Array.from(await pf.data())];
  let moved = 0;
  for (let i = 0; i < n; i++) moved = Math.max(moved, Math.abs(ref[i]! - p0[i]!));
  tf.dispose([pn, pf, ...Object.values(sn), ...Object.values(sf)]);
  return {
    shape,
    nativeVsRef: relErr(vn, ref),
    fallbackVsRef: relErr(vf, ref),
    nativeVsFallback: relErr(vn, vf),
    moved: moved / Math.sqrt(p0.reduce((a, x) => a + x * x, 0) / n),
  };
}

export function checkParity(row: ParityRow): void {
  const label = `shape [${row.shape}]`;
  expect(row.nativeVsRef, `${label} native vs float64`).toBeLessThan(PARITY_TOL);
  expect(row.fallbackVsRef, `${label} fallback vs float64`).toBeLessThan(PARITY_TOL);
  expect(row.nativeVsFallback, `${label} native vs fallback`).toBeLessThan(PARITY_TOL);
  expect(row.moved, `${label} the steps move p`).toBeGreaterThan(1e-3);
}

export function formatParity(backend: string, rows: ParityRow[]): string {
  const e = (x: number) => x.toExponential(2);
  return rows
    .map(
      (r) =>
        `[optim-came] ${backend} [${r.shape}] native-vs-f64 ${e(r.nativeVsRef)} | fallback-vs-f64 ${e(r.fallbackVsRef)} | native-vs-fallback ${e(r.nativeVsFallback)}`,
    )
    .join('\n');
}

/** Golden replay of every CAME run through the plugin on the active backend: native kernel, then the fallback. */
export async function goldenOnBackend(
  backend: string,
  around?: (update: () => void) => Promise<void>,
): Promise<{ native: number; fallback: number }> {
  const { runs } = goldenCameRuns();
  let native = 0;
  let fallback = 0;
  for (const [i, run] of runs.entries()) {
    const r = await replayPlugin(
      cameFromReferenceHparams(run.hparams),
      run,
      `${backend}-golden-${i}`,
      around,
    );
    const f = await replayPlugin(
      came({ ...cameFromReferenceHparams(run.hparams).hparams, impl: 'fallback' }),
      run,
      `${backend}-golden-fb-${i}`,
    );
    console.log(
      `[optim-came] golden replay on ${backend}: native kernel worst rel err ${r.worst.toExponential(3)} at ${r.worstAt}; fallback ${f.worst.toExponential(3)} at ${f.worstAt}`,
    );
    expect(Object.keys(r.errors).length).toBe(run.after.length);
    native = Math.max(native, r.worst);
    fallback = Math.max(fallback, f.worst);
  }
  return { native, fallback };
}
