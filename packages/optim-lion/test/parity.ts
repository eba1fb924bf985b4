import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { lion, lionKernel } from '../src/index.ts';
import { type LionHp, lionStep64, numel, randn, relErr, rng, signAwareErr } from './helpers.ts';

const read = async (t: tf.Tensor) => Float32Array.from((await t.data()) as Float32Array);

export const PARITY_SHAPES: number[][] = [[1], [7], [33, 65], [4, 5, 6], [4099]];

export interface ParityRow {
  shape: number[];
  nativeVsRef: number;
  fallbackVsRef: number;
  nativeVsFallback: number;
  /** Elements that ended > lr/2 away (a differing direction at some step): native, fallback vs the reference. */
  differing: [number, number];
  mNative: number;
  mFallback: number;
}

/**
 * 6 steps of the active backend's native `KstarLion` kernel and of the fallback side by side, with the float64
 * reference (weight decay on, a zero-gradient patch at step 3). `around` wraps each native update (webgpu: a
 * validation error scope and a GPU-memory check).
 */
export async function lionParity(
  shape: number[],
  seed: number,
  around: (update: () => void, step: number) => Promise<void> = async (u) => u(),
): Promise<ParityRow> {
  const n = numel(shape);
  const next = rng(seed);
  const init = randn(next, n);
  const hp: LionHp = { lr: 2e-3, beta1: 0.9, beta2: 0.99, weightDecay: 0.2 };
  const nat = lion(hp);
  const fb = lion({ ...hp, impl: 'fallback' });
  const mk = (name: string) => tf.tidy(() => tf.variable(tf.tensor(init, shape), true, name));
  const pn = mk(`parity-n-${seed}`);
  const pf = mk(`parity-f-${seed}`);
  const sn = nat.init({ name: pn.name, shape, role: 'other' });
  const sf = fb.init({ name: pf.name, shape, role: 'other' });
  const ref = { p: Float64Array.from(init), m: new Float64Array(n) };
  for (let t = 1; t <= 6; t++) {
    const gv = randn(next, n, 0.1);
    if (t === 3) gv.fill(0, 0, Math.min(n, 3));
    const g = tf.tensor(gv, shape);
    expect(lionKernel.which({ param: pn, grad: g, m: sn.m, hp })).toBe('native');
    const buffers = tf.memory().numDataBuffers;
    await around(() => nat.update(pn, g, sn, t), t);
    expect(tf.memory().numDataBuffers).toBe(buffers); // in place: no buffer created or freed
    fb.update(pf, g, sf, t);
    g.dispose();
    lionStep64(ref.p, gv, ref.m, hp);
  }
  const [np, fp, nm, fm] = await Promise.all([pn, pf, sn.m, sf.m].map(read));
  tf.dispose([pn, pf, sn.m, sf.m]);
  const en = signAwareErr(np, ref.p, hp.lr);
  const ef = signAwareErr(fp, ref.p, hp.lr);
  const enf = signAwareErr(np, fp, hp.lr);
  // 6 steps of ±lr moved p well above the tolerance: a wrong update cannot pass.
  expect(relErr(init, ref.p)).toBeGreaterThan(1e-3);
  return {
    shape,
    nativeVsRef: en.relErr,
    fallbackVsRef: ef.relErr,
    nativeVsFallback: enf.relErr,
    differing: [en.differing, ef.differing],
    mNative: relErr(nm, ref.m),
    mFallback: relErr(fm, ref.m),
  };
}

export function checkRow(row: ParityRow): void {
  const label = `shape [${row.shape}]`;
  expect(row.nativeVsRef, `${label} native vs float64`).toBeLessThanOrEqual(1e-6);
  expect(row.fallbackVsRef, `${label} fallback vs float64`).toBeLessThanOrEqual(1e-6);
  // Each within 1e-6 of the reference, so within 2e-6 of each other (float64 vs float32 arithmetic on cpu/wasm).
  expect(row.nativeVsFallback, `${label} native vs fallback`).toBeLessThanOrEqual(2e-6);
  expect(row.differing, `${label} elements with a differing direction`).toEqual([0, 0]);
  expect(row.mNative, `${label} native m`).toBeLessThanOrEqual(1e-6);
  expect(row.mFallback, `${label} fallback m`).toBeLessThanOrEqual(1e-6);
}

export function formatRows(backend: string, rows: ParityRow[]): string {
  const e = (x: number) => x.toExponential(1);
  return rows
    .map(
      (r) =>
        `${backend} [${r.shape}] native-vs-f64 ${e(r.nativeVsRef)} fallback-vs-f64 ${e(r.fallbackVsRef)} ` +
        `native-vs-fallback ${e(r.nativeVsFallback)} differing ${r.differing.join('/')} m ${e(r.mNative)}/${e(r.mFallback)}`,
    )
    .join('\n');
}

/** |Δp| = lr bit-exactly (wd 0, p on the lr grid) and g = 0 with m = 0 leaves p untouched, native kernel. */
export async function exactStepCheck(): Promise<void> {
  const lr = 2 ** -10;
  const plugin = lion({ lr });
  const n = 300;
  const next = rng(77);
  const init = Float32Array.from({ length: n }, () => Math.round((next() - 0.5) * 1024) / 1024);
  const p = tf.tidy(() => tf.variable(tf.tensor(init), true, 'exact-native'));
  const s = plugin.init({ name: p.name, shape: [n], role: 'vector' });
  const zero = tf.zeros([n]);
  plugin.update(p, zero, s, 1);
  expect(Array.from(await read(p))).toEqual(Array.from(init));
  let before = init;
  for (let t = 2; t <= 5; t++) {
    const g = tf.tensor(randn(next, n, 10 ** (t - 3)));
    plugin.update(p, g, s, t);
    g.dispose();
    const after = await read(p);
    for (let i = 0; i < n; i++) expect(Math.abs(after[i]! - before[i]!)).toBe(lr);
    before = after;
  }
  // keras test_single_step.
  const x = tf.tidy(() => tf.variable(tf.tensor([1, 2, 3, 4]), true, 'keras-native'));
  const k = lion({ lr: 0.5 });
  const ks = k.init({ name: x.name, shape: [4], role: 'vector' });
  const kg = tf.tensor([1, 6, 7, 2]);
  k.update(x, kg, ks, 1);
  expect(Array.from(await read(x))).toEqual([0.5, 1.5, 2.5, 3.5]);
  tf.dispose([p, s.m, zero, x, ks.m, kg]);
}

/**
 * A live clone of p forces the assign fallback (the clone keeps its values, p moves by lr·sign(c)); once the clone
 * is gone the in-place kernel runs again. `prefix` names the variable.
 */
export async function aliasingCheck(prefix: string): Promise<void> {
  const plugin = lion({ lr: 0.01 });
  const p = tf.tidy(() => tf.variable(tf.tensor([1, 2, 3]), true, `${prefix}/p`));
  const s = plugin.init({ name: p.name, shape: [3], role: 'vector' });
  const clone = tf.clone(p);
  const g = tf.tensor([1, -1, 0.5]);
  const hp = { ...plugin.hparams };
  expect(lionKernel.which({ param: p, grad: g, m: s.m, hp })).toBe('fallback');
  plugin.update(p, g, s, 1);
  expect(Array.from(await clone.data())).toEqual([1, 2, 3]);
  const got = await p.data();
  [0.99, 2.01, 2.99].forEach((v, i) => {
    expect(got[i]).toBeCloseTo(v, 6);
  });
  clone.dispose();
  expect(lionKernel.which({ param: p, grad: g, m: s.m, hp })).toBe('native');
  tf.dispose([p, g, s.m]);
}
