import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { adamwKernel, adamwUpdate } from '../src/index.ts';
import { adamwReference, HP, randomArray, relErr, STEPS } from './helpers.ts';

export const SHAPES: number[][] = [[1], [7], [10, 100], [4099]];

export interface ParityRow {
  shape: number[];
  /** native kernel vs the float64 reference, per state, after STEPS steps */
  nativeVsRef: { p: number; m: number; v: number };
  /** fallback (tfjs ops) vs the float64 reference */
  fallbackVsRef: { p: number; m: number; v: number };
  /** native vs fallback, parameter only */
  nativeVsFallback: number;
  /** max |Δp| relative to max |p0|: shows the update is not trivially small */
  moved: number;
}

function makeState(init: Float32Array, shape: number[]) {
  // Created in a tidy so each variable is the only holder of its buffer (refCount 1).
  return tf.tidy(() => ({
    p: tf.variable(tf.tensor(init.slice(), shape)),
    m: tf.variable(tf.zeros(shape)),
    v: tf.variable(tf.zeros(shape)),
  }));
}

async function read(t: tf.Tensor): Promise<Float32Array> {
  return Float32Array.from((await t.data()) as Float32Array);
}

/**
 * Runs STEPS AdamW steps with the active backend's native kernel and with the fallback, side by side, and the
 * float64 reference. `around` wraps each native update (webgpu: a validation error scope).
 */
export async function adamwParity(
  shape: number[],
  seed: number,
  around: (update: () => void, step: number) => Promise<void> = async (u) => u(),
): Promise<ParityRow> {
  const n = shape.reduce((a, b) => a * b, 1);
  const init = randomArray(n, seed);
  const nat = makeState(init, shape);
  const fb = makeState(init, shape);
  const ref = { p: Float64Array.from(init), m: new Float64Array(n), v: new Float64Array(n) };
  for (let step = 1; step <= STEPS; step++) {
    const hp = { ...HP, step };
    const gArr = randomArray(n, seed * 100 + step, 0.5);
    if (step === 2) gArr[0] = 0; // a zero gradient exercises the eps path
    const grad = tf.tensor(gArr, shape);
    const args = { param: nat.p, grad, m: nat.m, v: nat.v, hp };
    expect(adamwKernel.which(args)).toBe('native');
    const buffersBefore = tf.memory().numDataBuffers;
    await around(() => adamwUpdate(nat.p, grad, nat.m, nat.v, hp), step);
    // In place: no buffer was created or freed.
    expect(tf.memory().numDataBuffers).toBe(buffersBefore);
    adamwUpdate(fb.p, grad, fb.m, fb.v, hp, { impl: 'fallback' });
    adamwReference(ref.p, gArr, ref.m, ref.v, hp);
    grad.dispose();
  }
  const [np, nm, nv, fp, fm, fv] = await Promise.all([nat.p, nat.m, nat.v, fb.p, fb.m, fb.v].map(read));
  let moved = 0;
  for (let i = 0; i < n; i++) moved = Math.max(moved, Math.abs(ref.p[i] - init[i]));
  tf.dispose([nat.p, nat.m, nat.v, fb.p, fb.m, fb.v]);
  return {
    shape,
    nativeVsRef: { p: relErr(np, ref.p), m: relErr(nm, ref.m), v: relErr(nv, ref.v) },
    fallbackVsRef: { p: relErr(fp, ref.p), m: relErr(fm, ref.m), v: relErr(fv, ref.v) },
    nativeVsFallback: relErr(np, fp),
    moved,
  };
}

/** Tolerance for all comparisons: float32 storage (2^-24 ≈ 6e-8 per rounding) over STEPS steps. */
export const TOL = 2e-6;

export function checkRow(row: ParityRow): void {
  const label = `shape [${row.shape}]`;
  for (const k of ['p', 'm', 'v'] as const) {
    expect(row.nativeVsRef[k], `${label} native ${k} vs float64`).toBeLessThan(TOL);
    expect(row.fallbackVsRef[k], `${label} fallback ${k} vs float64`).toBeLessThan(TOL);
  }
  expect(row.nativeVsFallback, `${label} native vs fallback`).toBeLessThan(TOL);
  // 5 steps of lr 1e-2 move p by ≈ 5e-2: far above the tolerance, so a wrong update cannot pass.
  expect(row.moved).toBeGreaterThan(1e-2);
}

export function formatRows(backend: string, rows: ParityRow[]): string {
  const e = (x: number) => x.toExponential(1);
  return rows
    .map(
      (r) =>
        `${backend} [${r.shape}] native-vs-f64 p ${e(r.nativeVsRef.p)} m ${e(r.nativeVsRef.m)} v ${e(r.nativeVsRef.v)}` +
        ` | fallback-vs-f64 p ${e(r.fallbackVsRef.p)} m ${e(r.fallbackVsRef.m)} v ${e(r.fallbackVsRef.v)}` +
        ` | native-vs-fallback p ${e(r.nativeVsFallback)}`,
    )
    .join('\n');
}

/** A clone of the param alive during the update: the clone must keep its values; the param must be right. */
export async function aliasingCheck(expectInPlace: boolean): Promise<void> {
  const shape = [33];
  const init = randomArray(33, 7);
  const { p, m, v } = makeState(init, shape);
  const clone = tf.clone(p);
  const grad = tf.tensor(randomArray(33, 8), shape);
  const hp = { ...HP, step: 1 };
  expect(adamwKernel.which({ param: p, grad, m, v, hp })).toBe(expectInPlace ? 'native' : 'fallback');
  adamwUpdate(p, grad, m, v, hp);
  const ref = { p: Float64Array.from(init), m: new Float64Array(33), v: new Float64Array(33) };
  adamwReference(ref.p, await read(grad), ref.m, ref.v, hp);
  expect(Array.from(await read(clone))).toEqual(Array.from(init));
  expect(relErr(await read(p), ref.p)).toBeLessThan(TOL);
  // Once the clone is gone the buffer has a single holder again and the kernel runs in place.
  clone.dispose();
  expect(adamwKernel.which({ param: p, grad, m, v, hp: { ...hp, step: 2 } })).toBe('native');
  tf.dispose([p, m, v, grad]);
}

/** Reads between updates (webgpu caches downloaded values on the CPU) must not be served stale afterwards. */
export async function staleReadCheck(): Promise<void> {
  const shape = [64];
  const init = randomArray(64, 9);
  const { p, m, v } = makeState(init, shape);
  const ref = { p: Float64Array.from(init), m: new Float64Array(64), v: new Float64Array(64) };
  for (let step = 1; step <= 3; step++) {
    const gArr = randomArray(64, 90 + step);
    const grad = tf.tensor(gArr, shape);
    const hp = { ...HP, step };
    expect(adamwKernel.which({ param: p, grad, m, v, hp })).toBe('native');
    adamwUpdate(p, grad, m, v, hp);
    adamwReference(ref.p, gArr, ref.m, ref.v, hp);
    grad.dispose();
    // Each read caches the values; the next update must invalidate that cache.
    expect(relErr(await read(p), ref.p), `p after step ${step}`).toBeLessThan(TOL);
    expect(relErr(await read(m), ref.m), `m after step ${step}`).toBeLessThan(TOL);
    expect(relErr(await read(v), ref.v), `v after step ${step}`).toBeLessThan(TOL);
  }
  tf.dispose([p, m, v]);
}
