import { readFileSync } from 'node:fs';

/** The golden trajectories of `fixtures/golden/optimizers.json` (float64, torch.optim.AdamW for run 0). */
export interface Golden {
  shapes: Record<string, number[]>;
  init: Record<string, number[]>;
  /** grads[t] is the gradient of step t + 1. */
  grads: Record<string, number[]>[];
  runs: {
    optimizer: string;
    reference: string;
    hparams: Record<string, number>;
    params_used: string[];
    after: { step: number; params: Record<string, number[]> }[];
  }[];
}

let cached: Golden | undefined;
export function loadGolden(): Golden {
  cached ??= JSON.parse(
    readFileSync(new URL('../../../fixtures/golden/optimizers.json', import.meta.url), 'utf8'),
  ) as Golden;
  return cached;
}

export function goldenAdamW() {
  const golden = loadGolden();
  const run = golden.runs.find((r) => r.optimizer === 'adamw');
  if (run == null) throw new Error('no adamw run in the golden file');
  return { golden, run };
}

/** max|p − ref| / RMS(ref): the error relative to the parameter's scale. */
export function relErr(p: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (p.length !== ref.length) throw new Error(`length ${p.length} vs ${ref.length}`);
  let maxAbs = 0;
  let sq = 0;
  for (let i = 0; i < ref.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(p[i]! - ref[i]!));
    sq += ref[i]! * ref[i]!;
  }
  const rms = Math.sqrt(sq / ref.length);
  return maxAbs / rms;
}

export interface Hp {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** An independent float64 AdamW step (torch.optim.AdamW's formula, written out), in place on Float64Arrays. */
export function adamwStep64(
  p: Float64Array,
  g: ArrayLike<number>,
  m: Float64Array,
  v: Float64Array,
  hp: Hp,
  t: number,
): void {
  const bc1 = 1 - hp.beta1 ** t;
  const bc2 = 1 - hp.beta2 ** t;
  for (let i = 0; i < p.length; i++) {
    p[i] = p[i]! * (1 - hp.lr * hp.weightDecay);
    m[i] = hp.beta1 * m[i]! + (1 - hp.beta1) * g[i]!;
    v[i] = hp.beta2 * v[i]! + (1 - hp.beta2) * g[i]! * g[i]!;
    const mHat = m[i]! / bc1;
    const vHat = v[i]! / bc2;
    p[i] = p[i]! - (hp.lr * mHat) / (Math.sqrt(vHat) + hp.eps);
  }
}

/** mulberry32: a small seeded PRNG, so the random tests are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Approximately normal samples (sum of uniforms), scaled. */
export function randn(next: () => number, n: number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() + next() + next() + next() - 2) * Math.sqrt(3) * scale;
  return out;
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Bytes of the unique buffers behind `tensors` (numel × 4 per distinct dataId): measured, not predicted. */
export function measuredUniqueBytes(
  tensors: Iterable<{ dataId: object; shape: number[]; isDisposed: boolean }>,
) {
  const seen = new Set<object>();
  let bytes = 0;
  for (const t of tensors) {
    if (t.isDisposed || seen.has(t.dataId)) continue;
    seen.add(t.dataId);
    bytes += numel(t.shape) * 4;
  }
  return bytes;
}
