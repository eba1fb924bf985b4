import { readFileSync } from 'node:fs';

/** The golden trajectories of `fixtures/golden/optimizers.json` (float64; the `adagrad` run is torch.optim.Adagrad). */
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

/** The golden run whose optimizer is `adagrad` (today index 2: lr 0.1, eps 1e-10, initial_accumulator_value 0). */
export function goldenAdagradRun() {
  const golden = loadGolden();
  const index = golden.runs.findIndex((r) => r.optimizer === 'adagrad');
  if (index < 0) throw new Error('no adagrad run in the golden file');
  return { golden, run: golden.runs[index]!, index };
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function rms(x: ArrayLike<number>): number {
  let sq = 0;
  for (let i = 0; i < x.length; i++) sq += x[i]! * x[i]!;
  return Math.sqrt(sq / x.length);
}

/** max|p − ref| / RMS(ref). */
export function relErr(p: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (p.length !== ref.length) throw new Error(`length ${p.length} vs ${ref.length}`);
  let maxAbs = 0;
  for (let i = 0; i < ref.length; i++) maxAbs = Math.max(maxAbs, Math.abs(p[i]! - ref[i]!));
  return maxAbs / rms(ref);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export interface AdagradHp {
  lr: number;
  eps: number;
  init: number;
  epsInsideSqrt?: boolean;
}

/** Independent float64 Adagrad (torch `_single_tensor_adagrad`, lr_decay 0, wd 0): in place on Float64Arrays. */
export function adagradStep64(p: Float64Array, g: ArrayLike<number>, acc: Float64Array, hp: AdagradHp): void {
  for (let i = 0; i < p.length; i++) {
    acc[i] = acc[i]! + g[i]! * g[i]!;
    const denom = hp.epsInsideSqrt ? Math.sqrt(acc[i]! + hp.eps) : Math.sqrt(acc[i]!) + hp.eps;
    p[i] = p[i]! - (hp.lr * g[i]!) / denom;
  }
}

/** Rows of a row-major [V, d] array with at least one nonzero entry. */
export function nonzeroRows(g: ArrayLike<number>, V: number, d: number): Set<number> {
  const out = new Set<number>();
  for (let r = 0; r < V; r++) {
    for (let j = 0; j < d; j++) {
      if (g[r * d + j] !== 0) {
        out.add(r);
        break;
      }
    }
  }
  return out;
}

/** mulberry32: a small seeded PRNG. */
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

/** Approximately normal samples (sum of uniforms), scaled, rounded to float32. */
export function randn(next: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() + next() + next() + next() - 2) * Math.sqrt(3) * scale;
  return out;
}

/** Bytes of the unique buffers behind `tensors` (numel × 4 per distinct dataId): measured, not predicted. */
export function measuredUniqueBytes(
  tensors: Iterable<{ dataId: object; shape: number[]; isDisposed: boolean } | undefined>,
): number {
  const seen = new Set<object>();
  let bytes = 0;
  for (const t of tensors) {
    if (t == null || t.isDisposed || seen.has(t.dataId)) continue;
    seen.add(t.dataId);
    bytes += numel(t.shape) * 4;
  }
  return bytes;
}
