import * as tf from '@tensorflow/tfjs-core';
import { causalSoftmaxGradKernel, causalSoftmaxKernel } from './causal-softmax.ts';
import { crossEntropyGradKernel, crossEntropyKernel } from './cross-entropy.ts';
import { GELU_A, GELU_C, geluGradKernel, geluKernel } from './gelu.ts';
import { layerNormGradKernel, layerNormKernel } from './layer-norm.ts';

/**
 * Parity of every fused kernel on the active backend: the native kernel against the tfjs-ops fallback (forward and
 * gradient), and, where `float64` is set (small shapes), both against a float64 JS reference. Used by the CI tests
 * (lavapipe) and by `pnpm bench kernels` on a real GPU (gpt2-124m shapes).
 */
export interface ParityRow {
  kernel: string;
  shape: number[];
  /** max |native − fallback| / max(|fallback|, 1e-6) over the output. */
  relErrVsFallback: number;
  /** max |native − float64| / max(|float64|, 1e-6); null when not computed. */
  relErrVsFloat64: number | null;
  /** Same measure for the fallback against float64 (how far float32 tfjs ops are from exact). */
  fallbackRelErrVsFloat64: number | null;
  /** `native` when the backend ran the fused kernel, `fallback` when it has none (then the test is vacuous). */
  impl: 'native' | 'fallback';
  pass: boolean;
}

export interface ParityShapes {
  /** [N, D] rows for GELU and LayerNorm. */
  rows: [number, number];
  /** [B, H, T, T] attention scores. */
  attention: [number, number, number, number];
  /** [N, V] logits. */
  logits: [number, number];
  /** Compute float64 references (JS loops: keep the shapes small). */
  float64: boolean;
}

export const TINY_PARITY_SHAPES: ParityShapes = {
  rows: [37, 300],
  attention: [2, 3, 19, 19],
  logits: [13, 517],
  float64: true,
};

export const GPT2_PARITY_SHAPES: ParityShapes = {
  rows: [8192, 768],
  attention: [8, 12, 1024, 1024],
  logits: [8192, 50257],
  float64: false,
};

/** Relative tolerance: float32 reductions over ≤ 50,257 terms. */
export const PARITY_TOLERANCE = 2e-4;

/** Deterministic values in [lo, hi) (an LCG: no Math.random in tests). */
export function parityValues(n: number, seed: number, lo = -2, hi = 2): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((s >>> 8) / 2 ** 24) * (hi - lo);
  }
  return out;
}

/** max |a − ref| / max(|ref|, 1e-6); Infinity on NaN or a length mismatch. */
export function parityRelErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let maxDiff = 0;
  let maxRef = 1e-6;
  for (let i = 0; i < ref.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i]! - ref[i]!));
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  return Number.isNaN(maxDiff) || a.length !== ref.length ? Number.POSITIVE_INFINITY : maxDiff / maxRef;
}

async function read(t: tf.Tensor): Promise<Float32Array> {
  const d = (await t.data()) as Float32Array;
  t.dispose();
  return d;
}

function row(
  kernel: string,
  shape: number[],
  impl: 'native' | 'fallback',
  native: Float32Array,
  fallback: Float32Array,
  exact: Float64Array | null,
): ParityRow {
  const vsFallback = parityRelErr(native, fallback);
  const vs64 = exact ? parityRelErr(native, exact) : null;
  const fb64 = exact ? parityRelErr(fallback, exact) : null;
  return {
    kernel,
    shape,
    relErrVsFallback: vsFallback,
    relErrVsFloat64: vs64,
    fallbackRelErrVsFloat64: fb64,
    impl,
    pass: vsFallback <= PARITY_TOLERANCE && (vs64 === null || vs64 <= PARITY_TOLERANCE),
  };
}

// ---- float64 references ----

function geluRef(h: Float32Array, dy: Float32Array): { y: Float64Array; dh: Float64Array } {
  const y = new Float64Array(h.length);
  const dh = new Float64Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const x = h[i]!;
    const t = Math.tanh(GELU_C * (x + GELU_A * x ** 3));
    y[i] = 0.5 * x * (1 + t);
    dh[i] = dy[i]! * (0.5 * (1 + t) + 0.5 * GELU_C * x * (1 - t * t) * (1 + 3 * GELU_A * x * x));
  }
  return { y, dh };
}

function layerNormRef(
  x: Float32Array,
  g: Float32Array,
  b: Float32Array,
  dy: Float32Array,
  N: number,
  D: number,
  eps: number,
) {
  const y = new Float64Array(N * D);
  const dx = new Float64Array(N * D);
  const dg = new Float64Array(D);
  const db = new Float64Array(D);
  for (let n = 0; n < N; n++) {
    let mu = 0;
    for (let d = 0; d < D; d++) mu += x[n * D + d]!;
    mu /= D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x[n * D + d]! - mu) ** 2;
    const rs = 1 / Math.sqrt(v / D + eps);
    let m1 = 0;
    let m2 = 0;
    for (let d = 0; d < D; d++) {
      const xh = (x[n * D + d]! - mu) * rs;
      y[n * D + d] = xh * g[d]! + b[d]!;
      const gy = dy[n * D + d]! * g[d]!;
      m1 += gy;
      m2 += gy * xh;
      dg[d]! += dy[n * D + d]! * xh;
      db[d]! += dy[n * D + d]!;
    }
    m1 /= D;
    m2 /= D;
    for (let d = 0; d < D; d++) {
      const xh = (x[n * D + d]! - mu) * rs;
      dx[n * D + d] = rs * (dy[n * D + d]! * g[d]! - m1 - xh * m2);
    }
  }
  return { y, dx, dg, db };
}

function causalSoftmaxRef(s: Float32Array, dp: Float32Array, T: number, scale: number) {
  const p = new Float64Array(s.length);
  const ds = new Float64Array(s.length);
  for (let r = 0; r < s.length / T; r++) {
    const i = r % T;
    const base = r * T;
    let m = -Infinity;
    for (let j = 0; j <= i; j++) m = Math.max(m, s[base + j]! * scale);
    let z = 0;
    for (let j = 0; j <= i; j++) z += Math.exp(s[base + j]! * scale - m);
    let dot = 0;
    for (let j = 0; j <= i; j++) {
      p[base + j] = Math.exp(s[base + j]! * scale - m) / z;
      dot += dp[base + j]! * p[base + j]!;
    }
    for (let j = 0; j <= i; j++) ds[base + j] = scale * p[base + j]! * (dp[base + j]! - dot);
  }
  return { p, ds };
}

function crossEntropyRef(z: Float32Array, t: Int32Array, N: number, V: number, dy: number) {
  const dz = new Float64Array(N * V);
  let loss = 0;
  const lse = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, z[n * V + v]!);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(z[n * V + v]! - m);
    lse[n] = m + Math.log(s);
    loss += lse[n]! - z[n * V + t[n]!]!;
    for (let v = 0; v < V; v++)
      dz[n * V + v] = ((Math.exp(z[n * V + v]! - lse[n]!) - (v === t[n] ? 1 : 0)) * dy) / N;
  }
  return { loss: new Float64Array([loss / N]), lse, dz };
}

// ---- the suite ----

/** Runs every fused kernel on the active backend against its fallback (and float64); disposes every tensor. */
export async function fusedKernelParity(shapes: ParityShapes = TINY_PARITY_SHAPES): Promise<ParityRow[]> {
  const rows: ParityRow[] = [];
  const both = async <A, R>(
    kernel: { run(a: A, o?: { impl?: 'auto' | 'fallback' }): R; which(a: A): 'native' | 'fallback' },
    args: A,
    pickOut: (r: R) => tf.Tensor[],
  ): Promise<{ native: Float32Array[]; fallback: Float32Array[]; impl: 'native' | 'fallback' }> => {
    const impl = kernel.which(args);
    const n = pickOut(kernel.run(args));
    const native = [];
    for (const t of n) native.push(await read(t));
    const f = pickOut(kernel.run(args, { impl: 'fallback' }));
    const fallback = [];
    for (const t of f) fallback.push(await read(t));
    return { native, fallback, impl };
  };
  const one = (t: tf.Tensor) => [t];

  {
    const [N, D] = shapes.rows;
    const hv = parityValues(N * D, 1, -4, 4);
    const dyv = parityValues(N * D, 2);
    const h = tf.tensor2d(hv, [N, D]);
    const dy = tf.tensor2d(dyv, [N, D]);
    const ref = shapes.float64 ? geluRef(hv, dyv) : null;
    const f = await both(geluKernel, h, one);
    rows.push(row('KstarGelu', [N, D], f.impl, f.native[0]!, f.fallback[0]!, ref?.y ?? null));
    const g = await both(geluGradKernel, { h, dy }, one);
    rows.push(row('KstarGeluGrad', [N, D], g.impl, g.native[0]!, g.fallback[0]!, ref?.dh ?? null));

    const gv = parityValues(D, 3, 0.5, 1.5);
    const bv = parityValues(D, 4, -0.5, 0.5);
    const gamma = tf.tensor1d(gv);
    const beta = tf.tensor1d(bv);
    const eps = 1e-5;
    const lnRef = shapes.float64 ? layerNormRef(hv, gv, bv, dyv, N, D, eps) : null;
    const ln = await both(
      layerNormKernel,
      { x: h, gamma, beta, eps },
      (r: { y: tf.Tensor; mean: tf.Tensor; rstd: tf.Tensor }) => [r.y, r.mean, r.rstd],
    );
    rows.push(row('KstarLayerNorm', [N, D], ln.impl, ln.native[0]!, ln.fallback[0]!, lnRef?.y ?? null));
    const { y, mean, rstd } = layerNormKernel.run({ x: h, gamma, beta, eps }, { impl: 'fallback' });
    const lg = await both(
      layerNormGradKernel,
      { x: h, gamma, mean, rstd, dy },
      (r: { dx: tf.Tensor; dgamma: tf.Tensor; dbeta: tf.Tensor }) => [r.dx, r.dgamma, r.dbeta],
    );
    rows.push(
      row('KstarLayerNormGrad dx', [N, D], lg.impl, lg.native[0]!, lg.fallback[0]!, lnRef?.dx ?? null),
    );
    rows.push(
      row('KstarLayerNormGrad dgamma', [D], lg.impl, lg.native[1]!, lg.fallback[1]!, lnRef?.dg ?? null),
    );
    rows.push(
      row('KstarLayerNormGrad dbeta', [D], lg.impl, lg.native[2]!, lg.fallback[2]!, lnRef?.db ?? null),
    );
    tf.dispose([h, dy, gamma, beta, y, mean, rstd]);
  }
  {
    const shape = shapes.attention;
    const T = shape[3];
    const size = shape.reduce((a, b) => a * b, 1);
    const sv = parityValues(size, 5, -6, 6);
    const dpv = parityValues(size, 6);
    const scale = 1 / Math.sqrt(64);
    const s = tf.tensor(sv, shape);
    const dp = tf.tensor(dpv, shape);
    const ref = shapes.float64 ? causalSoftmaxRef(sv, dpv, T, scale) : null;
    const f = await both(causalSoftmaxKernel, { s, scale }, one);
    rows.push(row('KstarCausalSoftmax', shape, f.impl, f.native[0]!, f.fallback[0]!, ref?.p ?? null));
    const p = causalSoftmaxKernel.run({ s, scale }, { impl: 'fallback' });
    const g = await both(causalSoftmaxGradKernel, { p, dp, scale }, one);
    rows.push(row('KstarCausalSoftmaxGrad', shape, g.impl, g.native[0]!, g.fallback[0]!, ref?.ds ?? null));
    tf.dispose([s, dp, p]);
  }
  {
    const [N, V] = shapes.logits;
    const zv = parityValues(N * V, 7, -8, 8);
    const tv = new Int32Array(N);
    for (let n = 0; n < N; n++) tv[n] = (n * 7919 + 13) % V;
    const logits = tf.tensor2d(zv, [N, V]);
    const targets = tf.tensor1d(tv, 'int32');
    const dyValue = 1.5;
    const dy = tf.scalar(dyValue);
    const ref = shapes.float64 ? crossEntropyRef(zv, tv, N, V, dyValue) : null;
    const f = await both(
      crossEntropyKernel,
      { logits, targets },
      (r: { loss: tf.Tensor; lse: tf.Tensor }) => [r.loss, r.lse],
    );
    rows.push(row('KstarCrossEntropy loss', [N, V], f.impl, f.native[0]!, f.fallback[0]!, ref?.loss ?? null));
    rows.push(row('KstarCrossEntropy lse', [N, V], f.impl, f.native[1]!, f.fallback[1]!, ref?.lse ?? null));
    const { lse, loss } = crossEntropyKernel.run({ logits, targets }, { impl: 'fallback' });
    const g = await both(crossEntropyGradKernel, { logits, lse, targets, dy }, one);
    rows.push(row('KstarCrossEntropyGrad', [N, V], g.impl, g.native[0]!, g.fallback[0]!, ref?.dz ?? null));
    tf.dispose([logits, targets, dy, lse, loss]);
  }
  return rows;
}

/** One line per row: PASS/FAIL, kernel, shape, errors. */
export function formatParity(rows: ParityRow[]): string {
  const e = (x: number | null) => (x === null ? '-' : x.toExponential(2));
  return rows
    .map(
      (r) =>
        `${r.pass ? 'PASS' : 'FAIL'} ${r.kernel.padEnd(26)} ${`[${r.shape.join(',')}]`.padEnd(20)} ${r.impl.padEnd(8)} ` +
        `vs fallback ${e(r.relErrVsFallback)}  vs float64 ${e(r.relErrVsFloat64)}  (fallback vs float64 ${e(r.fallbackRelErrVsFloat64)})`,
    )
    .join('\n');
}
