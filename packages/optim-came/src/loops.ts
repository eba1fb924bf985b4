/**
 * The CAME update as typed-array loops: the native kernel of the cpu backend (over `backend.data` values) and of
 * the wasm backend (over heap views). Arithmetic in float64, storage in float32 (the state lives in float32
 * tensors, so every stored value is rounded once, exactly as the other backends store it).
 *
 * Temporaries: row and column vectors only (Float64Array of B·m and B·n); no parameter-sized buffer.
 */
import { colRsqrtFactors, factoredMomentArrays, rowRsqrtFactors } from '@kstar/kernels';

/** Per-call constants (plain numbers: they travel as kernel attributes). */
export interface CameConsts {
  lr: number;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  beta3: number;
  oneMinusBeta3: number;
  eps1: number;
  eps2: number;
  clipThreshold: number;
  /** weightDecay · lr (decoupled decay: p ← p − wd·lr·p). */
  wdLr: number;
  /** Factoring geometry: batch B (Π leading dims), rows m, cols n (vectors: 1, 1, numel). */
  batch: number;
  rows: number;
  cols: number;
}

/**
 * Factored CAME step for a parameter seen as B × [m, n] (row-major), every array updated in place:
 *   u = g² + ε1;  vRow ← β2·vRow + (1−β2)·mean_n(u);  vCol ← β2·vCol + (1−β2)·mean_m(u)
 *   U = g · rsqrt(vRow / mean_m vRow)[row] · rsqrt(vCol)[col];  U ← U / max(1, RMS(U)/clip)
 *   m ← β1·m + (1−β1)·U;  res = (U − m)² + ε2;  resRow, resCol ← β3-EMAs of its row and column means
 *   p ← p − wd·lr·p − lr · m · rsqrt(resRow / mean resRow)[row] · rsqrt(resCol)[col]
 */
export function cameFactoredArrays(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  vRow: Float32Array,
  vCol: Float32Array,
  resRow: Float32Array,
  resCol: Float32Array,
  c: CameConsts,
): void {
  const { batch: B, rows: M, cols: N } = c;
  const numel = B * M * N;
  // 1. Factored second moment.
  const { row: rf, col: cf } = factoredMomentArrays(g, vRow, vCol, { B, m: M, n: N }, c.beta2, c.eps1);
  // 2. RMS of the unclipped update U (recomputed below instead of stored: no parameter-sized temporary).
  let sumSq = 0;
  for (let r = 0; r < B * M; r++) {
    const cb = Math.floor(r / M) * N;
    const base = r * N;
    for (let j = 0; j < N; j++) {
      const u = g[base + j]! * (rf[r]! * cf[cb + j]!);
      sumSq += u * u;
    }
  }
  const d = Math.max(1, Math.sqrt(sumSq / numel) / c.clipThreshold);
  // 3. Momentum of the clipped update and the instability (U − m)² + ε2, reduced to rows and columns.
  const colAcc = new Float64Array(B * N);
  for (let r = 0; r < B * M; r++) {
    const cb = Math.floor(r / M) * N;
    const base = r * N;
    let rowSum = 0;
    for (let j = 0; j < N; j++) {
      const k = base + j;
      const u = (g[k]! * (rf[r]! * cf[cb + j]!)) / d;
      m[k] = c.beta1 * m[k]! + c.oneMinusBeta1 * u;
      const e = u - m[k]!; // the stored (float32) momentum, as every backend sees it
      const res = e * e + c.eps2;
      rowSum += res;
      colAcc[cb + j]! += res;
    }
    resRow[r] = c.beta3 * resRow[r]! + c.oneMinusBeta3 * (rowSum / N);
  }
  for (let k = 0; k < B * N; k++) resCol[k] = c.beta3 * resCol[k]! + c.oneMinusBeta3 * (colAcc[k]! / M);
  // 4. Confidence-scaled step.
  rowRsqrtFactors(resRow, B, M, rf);
  colRsqrtFactors(resCol, cf);
  for (let r = 0; r < B * M; r++) {
    const cb = Math.floor(r / M) * N;
    const base = r * N;
    for (let j = 0; j < N; j++) {
      const k = base + j;
      const step = m[k]! * (rf[r]! * cf[cb + j]!);
      const p0 = p[k]!;
      p[k] = p0 - c.wdLr * p0 - c.lr * step;
    }
  }
}

/**
 * Unfactored CAME step (vectors, scalars), in place: v ← β2·v + (1−β2)·(g² + ε1); U = g·rsqrt(v);
 * U ← U / max(1, RMS(U)/clip); m ← β1·m + (1−β1)·U; p ← p − wd·lr·p − lr·m (no confidence term).
 */
export function cameVectorArrays(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  c: CameConsts,
): void {
  const n = p.length;
  let sumSq = 0;
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    v[i] = c.beta2 * v[i]! + c.oneMinusBeta2 * (gi * gi + c.eps1);
    const u = gi / Math.sqrt(v[i]!);
    sumSq += u * u;
  }
  const d = Math.max(1, Math.sqrt(sumSq / n) / c.clipThreshold);
  for (let i = 0; i < n; i++) {
    const u = g[i]! / Math.sqrt(v[i]!) / d;
    m[i] = c.beta1 * m[i]! + c.oneMinusBeta1 * u;
    const p0 = p[i]!;
    p[i] = p0 - c.wdLr * p0 - c.lr * m[i]!;
  }
}
