import * as tf from '@tensorflow/tfjs';
import { afterAll, expect } from 'vitest';
import { onBackend, skipWebGPU } from '../../../testkit/src/backends.ts';
import { rng } from '../../../testkit/src/random.ts';
import {
  type AdamWHyper,
  type BackendName,
  flushWebGPU,
  shutdownWebGPU,
  webgpuDevice,
} from '../src/index.ts';

// The test kit's seeded PRNG, WebGPU skip switch and backend hooks, reached by path (@kstar/testkit depends on
// @kstar/kernels).
export { onBackend, rng, skipWebGPU };

/** Runs `f` inside a WebGPU validation error scope, submits what tfjs batched, fails on any error; returns `f`'s value. */
export async function withoutValidationError<T>(f: () => T | Promise<T>): Promise<T> {
  const device = webgpuDevice()!;
  device.pushErrorScope('validation');
  const value = await f();
  flushWebGPU();
  const error = await device.popErrorScope();
  expect(error?.message ?? null).toBeNull();
  return value;
}

/** max |a − b| / max |b| of two tensors (error relative to the tensor's scale), read back as a number. */
export async function tensorRelErr(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => tf.div(tf.max(tf.abs(tf.sub(a, b))), tf.max(tf.abs(b))));
  const x = (await d.data())[0]!;
  d.dispose();
  return x;
}

/**
 * The backends a kernel test file runs on: cpu, wasm and webgpu (left out when KSTAR_SKIP_WEBGPU=1, saying what
 * was `notTested`); WebGPU is shut down after the file.
 */
export function kernelTestBackends(notTested: string): BackendName[] {
  const skip = skipWebGPU(notTested);
  afterAll(() => {
    shutdownWebGPU();
  });
  return ['cpu', 'wasm', ...(skip ? [] : (['webgpu'] as const))];
}

/** Float32-representable values in [-scale, scale). */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/**
 * Independent float64 reference of torch.optim.AdamW, written from the torch docs (not from src/):
 * p ← p − lr·wd·p; m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; m̂ = m/(1−β1^t); v̂ = v/(1−β2^t);
 * p ← p − lr·m̂/(√v̂ + eps), with the eps placement of torch: denom = √v/√(1−β2^t) + eps.
 */
export function adamwReference(
  p: Float64Array,
  g: ArrayLike<number>,
  m: Float64Array,
  v: Float64Array,
  hp: AdamWHyper,
): void {
  const bc1 = 1 - hp.beta1 ** hp.step;
  const bc2 = 1 - hp.beta2 ** hp.step;
  for (let i = 0; i < p.length; i++) {
    p[i] -= hp.lr * hp.weightDecay * p[i];
    m[i] = hp.beta1 * m[i] + (1 - hp.beta1) * g[i];
    v[i] = hp.beta2 * v[i] + (1 - hp.beta2) * g[i] * g[i];
    const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + hp.eps;
    p[i] -= (hp.lr / bc1) * (m[i] / denom);
  }
}

/** max |a − b| / max |b|: error relative to the tensor's scale (robust where b crosses zero). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? num : num / den;
}

export const HP: Omit<AdamWHyper, 'step'> = {
  lr: 1e-2,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.1,
};
export const SIZES = [1, 7, 1000, 4099];
export const STEPS = 5;
