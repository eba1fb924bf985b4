import { blockReduceSource } from './block-reduce.ts';
/**
 * CUDA C sources of the factored-second-moment optimizers (@kstar/kernels' factored-moment.ts): Adafactor
 * (@kstar/optim-adafactor), AdaLomo (@kstar/optim-lomo) and CAME (@kstar/optim-came), plus plain LOMO. A parameter [...batch(B), m, n] keeps
 * R [B·m] and C [B·n], the β-EMAs of the row and column means of u = g'² + eps1 (g' = the gradient, clamped and
 * scaled for AdaLomo); rank ≤ 1 keeps V instead. The update U = g'·rsqrt(R/mean R)·rsqrt(C) (or g'·rsqrt(V)) is
 * never stored: one pass sums U² and p² into per-block float64 partials, one block turns them into [alpha, k], and
 * the last pass recomputes U and writes p (and Adafactor's first moment) in place. Sums and factors in float64 like
 * the cpu kernels (float tolerance: the summation order differs).
 */

/** Rows summed by one thread of the column means' first pass. */
export const FACTORED_CHUNK = 64;

/** CUDA blocks (of 256 threads) of the U² / p² partial sums: a fixed count, so the reduction order is fixed. */
export const SUM_BLOCKS = 512;

/** The kernels' float64 constants, in the order of `FactoredConsts` (flags as 0/1). */
export const FACTORED_CONSTS = [
  'beta2t',
  'omb2t',
  'eps1',
  'gclip',
  'gscale',
  'base',
  'scaleByRms',
  'eps2',
  'clip',
  'weightDecay',
  'beta1',
  'hasMomentum',
  'lomoForm',
] as const;

const COMMON = `
struct FactoredConsts { double ${FACTORED_CONSTS.join(', ')}; };
/** g' = clamp(g, ±gclip)·gscale (Adafactor: gclip huge, gscale 1). */
__device__ __forceinline__ double gradAt(float g, const FactoredConsts& k) {
  double x = (double)g;
  if (x > k.gclip) x = k.gclip; else if (x < -k.gclip) x = -k.gclip;
  return x * k.gscale;
}
${blockReduceSource('SumD', 'double', (a, b) => `${a} + ${b}`, '0.0')}/** U at flat index i: factored (row != 0) or vector. rmean: mean R per batch (float64). */
__device__ __forceinline__ double updateAt(long long i, const float* g, const float* row, const float* col,
    const double* rmean, const float* v, long long m, long long n, const FactoredConsts& k) {
  const double gv = gradAt(g[i], k);
  if (row == 0) return gv / sqrt((double)v[i]);
  const long long r = i / n, j = i - r * n, b = r / m;
  return gv * (1.0 / sqrt((double)row[r] / rmean[b])) * (1.0 / sqrt((double)col[b * n + j]));
}
`;

/** R[r] ← β·R[r] + (1−β)·mean_j u[r, j], one block a row of g [B·m, n]. */
export const factoredRowsSource = (name: string): string => `${COMMON}
extern "C" __global__ void ${name}(float* __restrict__ row, const float* __restrict__ g, long long n, FactoredConsts k) {
  const long long base = (long long)blockIdx.x * n;
  double s = 0.0;
  for (long long j = threadIdx.x; j < n; j += blockDim.x) { double gv = gradAt(g[base + j], k); s += gv * gv + k.eps1; }
  s = blockSumD(s);
  if (threadIdx.x == 0) row[blockIdx.x] = (float)(k.beta2t * (double)row[blockIdx.x] + k.omb2t * (s / (double)n));
}
`;

/** Column sums, first pass: partial[c, b·n + j] = Σ u over rows [c·${FACTORED_CHUNK}, …) of batch b (float64 pairs). */
export const factoredColPartialSource = (name: string): string => `${COMMON}
extern "C" __global__ void ${name}(double* __restrict__ partial, const float* __restrict__ g, long long B, long long m,
    long long n, FactoredConsts k) {
  const long long chunks = (m + ${FACTORED_CHUNK} - 1) / ${FACTORED_CHUNK}, total = chunks * B * n;
  for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)gridDim.x * blockDim.x) {
    const long long c = t / (B * n), bj = t - c * B * n, b = bj / n, j = bj - b * n;
    const long long i0 = c * ${FACTORED_CHUNK}, i1 = i0 + ${FACTORED_CHUNK} < m ? i0 + ${FACTORED_CHUNK} : m;
    double s = 0.0;
    for (long long i = i0; i < i1; ++i) { double gv = gradAt(g[(b * m + i) * n + j], k); s += gv * gv + k.eps1; }
    partial[t] = s;
  }
}
`;

/** Column sums, second pass: C[b·n + j] ← β·C + (1−β)·(Σ_c partial)/m. */
export const factoredColsSource = (name: string): string => `${COMMON}
extern "C" __global__ void ${name}(float* __restrict__ col, const double* __restrict__ partial, long long chunks,
    long long n, long long m, FactoredConsts k) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    double s = 0.0;
    for (long long c = 0; c < chunks; ++c) s += partial[c * n + i];
    col[i] = (float)(k.beta2t * (double)col[i] + k.omb2t * (s / (double)m));
  }
}
`;

/** Vector state: V ← β·V + (1−β)·(g'² + eps1). */
export const factoredVectorSource = (name: string): string => `${COMMON}
extern "C" __global__ void ${name}(float* __restrict__ v, const float* __restrict__ g, long long n, FactoredConsts k) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const double gv = gradAt(g[i], k);
    v[i] = (float)(k.beta2t * (double)v[i] + k.omb2t * (gv * gv + k.eps1));
  }
}
`;

/** Mean of R per batch (float64), one block a batch of m rows. */
export const factoredRowMeanSource = (name: string): string => `${COMMON}
extern "C" __global__ void ${name}(double* __restrict__ rmean, const float* __restrict__ row, long long m) {
  double s = 0.0;
  for (long long i = threadIdx.x; i < m; i += blockDim.x) s += (double)row[(long long)blockIdx.x * m + i];
  s = blockSumD(s);
  if (threadIdx.x == 0) rmean[blockIdx.x] = s / (double)m;
}
`;

/** Per-block partial sums of U² (partial[b]) and p² (partial[gridDim + b]) over N elements. */
export const factoredSumsSource = (name: string): string => `${COMMON}
extern "C" __global__ void ${name}(double* __restrict__ partial, const float* __restrict__ p, const float* __restrict__ g,
    const float* __restrict__ row, const float* __restrict__ col, const double* __restrict__ rmean,
    const float* __restrict__ v, long long N, long long m, long long n, FactoredConsts k) {
  double su = 0.0, sp = 0.0;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < N; i += (long long)gridDim.x * blockDim.x) {
    const double u = updateAt(i, g, row, col, rmean, v, m, n, k), pv = (double)p[i];
    su += u * u;
    sp += pv * pv;
  }
  su = blockSumD(su);
  sp = blockSumD(sp);
  if (threadIdx.x == 0) { partial[blockIdx.x] = su; partial[gridDim.x + blockIdx.x] = sp; }
}
`;

/**
 * [alpha, k] from the partial sums, one block: alpha = base·max(eps2, RMS(p)) (or base when scaleByRms is 0),
 * k = alpha / max(1, RMS(U)/clip).
 */
export const factoredScalarsSource = (name: string): string => `${COMMON}
extern "C" __global__ void ${name}(double* __restrict__ scalars, const double* __restrict__ partial, long long blocks,
    long long N, FactoredConsts k) {
  double su = 0.0, sp = 0.0;
  for (long long b = threadIdx.x; b < blocks; b += blockDim.x) { su += partial[b]; sp += partial[blocks + b]; }
  su = blockSumD(su);
  sp = blockSumD(sp);
  if (threadIdx.x == 0) {
    const double rmsP = sqrt(sp / (double)N);
    const double alpha = k.scaleByRms != 0.0 ? k.base * (rmsP > k.eps2 ? rmsP : k.eps2) : k.base;
    const double q = sqrt(su / (double)N) / k.clip;
    scalars[0] = alpha;
    scalars[1] = alpha / (q > 1.0 ? q : 1.0);
  }
}
`;

/**
 * p in place from the recomputed U: Adafactor p ← p − wd·alpha·p − step (step = k·U, or the first moment
 * M ← β1·M + (1−β1)·k·U); AdaLomo (lomoForm) p ← p·(1 − alpha·wd) − k·U.
 */
export const factoredUpdateSource = (name: string): string => `${COMMON}
extern "C" __global__ void ${name}(float* __restrict__ p, float* __restrict__ mom, const float* __restrict__ g,
    const float* __restrict__ row, const float* __restrict__ col, const double* __restrict__ rmean,
    const float* __restrict__ v, const double* __restrict__ scalars, long long N, long long m, long long n, FactoredConsts k) {
  const double alpha = scalars[0], kk = scalars[1], decay = k.weightDecay * alpha;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < N; i += (long long)gridDim.x * blockDim.x) {
    const double u = updateAt(i, g, row, col, rmean, v, m, n, k), pv = (double)p[i];
    if (k.lomoForm != 0.0) {
      p[i] = (float)(pv * (1.0 - decay) - kk * u);
    } else if (k.hasMomentum != 0.0) {
      const float mi = (float)(k.beta1 * (double)mom[i] + (1.0 - k.beta1) * (kk * u));
      mom[i] = mi;
      p[i] = (float)(pv - decay * pv - (double)mi);
    } else {
      p[i] = (float)(pv - decay * pv - kk * u);
    }
  }
}
`;

/**
 * CAME (@kstar/optim-came), after the factored (or vector) second moment, the U² sums and [1, 1/d] from the scalars
 * kernel: the first moment of the clipped update, M ← β1·M + (1−β1)·U/d.
 */
export const cameMomentSource = (name: string): string => `${COMMON}
extern "C" __global__ void ${name}(float* __restrict__ mom, const float* __restrict__ g, const float* __restrict__ row,
    const float* __restrict__ col, const double* __restrict__ rmean, const float* __restrict__ v,
    const double* __restrict__ scalars, long long N, long long m, long long n, FactoredConsts k) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < N; i += (long long)gridDim.x * blockDim.x) {
    const double u = updateAt(i, g, row, col, rmean, v, m, n, k) * scalars[1];
    mom[i] = (float)(k.beta1 * (double)mom[i] + (1.0 - k.beta1) * u);
  }
}
`;

/** CAME's instability (U/d − M)² + ε2 at flat index i (r: K3 carries β3 as beta2t and ε2 as eps1). */
const CAME_RES = `
__device__ __forceinline__ double cameRes(long long i, const float* g, const float* mom, const float* row,
    const float* col, const double* rmean, const double* scalars, long long m, long long n, const FactoredConsts& k) {
  const double e = updateAt(i, g, row, col, rmean, 0, m, n, k) * scalars[1] - (double)mom[i];
  return e * e + k.eps1;
}
`;

/** resRow[r] ← β3·resRow[r] + (1−β3)·mean_j res[r, j], one block a row. */
export const cameResRowsSource = (name: string): string => `${COMMON}${CAME_RES}
extern "C" __global__ void ${name}(float* __restrict__ resRow, const float* __restrict__ g, const float* __restrict__ mom,
    const float* __restrict__ row, const float* __restrict__ col, const double* __restrict__ rmean,
    const double* __restrict__ scalars, long long m, long long n, FactoredConsts k) {
  const long long base = (long long)blockIdx.x * n;
  double s = 0.0;
  for (long long j = threadIdx.x; j < n; j += blockDim.x) s += cameRes(base + j, g, mom, row, col, rmean, scalars, m, n, k);
  s = blockSumD(s);
  if (threadIdx.x == 0) resRow[blockIdx.x] = (float)(k.beta2t * (double)resRow[blockIdx.x] + k.omb2t * (s / (double)n));
}
`;

/** Column sums of res, first pass (as factoredColPartialSource); factoredColsSource finishes resCol. */
export const cameResColPartialSource = (name: string): string => `${COMMON}${CAME_RES}
extern "C" __global__ void ${name}(double* __restrict__ partial, const float* __restrict__ g, const float* __restrict__ mom,
    const float* __restrict__ row, const float* __restrict__ col, const double* __restrict__ rmean,
    const double* __restrict__ scalars, long long B, long long m, long long n, FactoredConsts k) {
  const long long chunks = (m + ${FACTORED_CHUNK} - 1) / ${FACTORED_CHUNK}, total = chunks * B * n;
  for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)gridDim.x * blockDim.x) {
    const long long c = t / (B * n), bj = t - c * B * n, b = bj / n, j = bj - b * n;
    const long long i0 = c * ${FACTORED_CHUNK}, i1 = i0 + ${FACTORED_CHUNK} < m ? i0 + ${FACTORED_CHUNK} : m;
    double s = 0.0;
    for (long long i = i0; i < i1; ++i) s += cameRes((b * m + i) * n + j, g, mom, row, col, rmean, scalars, m, n, k);
    partial[t] = s;
  }
}
`;

/**
 * CAME's step: p ← p − wdLr·p − lr·M·rsqrt(resRow/mean resRow)·rsqrt(resCol) (base = lr, weightDecay = wdLr); the
 * vector form (resRow null) has no confidence factor.
 */
export const cameUpdateSource = (name: string): string => `${COMMON}
extern "C" __global__ void ${name}(float* __restrict__ p, const float* __restrict__ mom, const float* __restrict__ resRow,
    const float* __restrict__ resCol, const double* __restrict__ rmean, long long N, long long m, long long n,
    FactoredConsts k) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < N; i += (long long)gridDim.x * blockDim.x) {
    double step = (double)mom[i];
    if (resRow != 0) {
      const long long r = i / n, j = i - r * n, b = r / m;
      step *= (1.0 / sqrt((double)resRow[r] / rmean[b])) * (1.0 / sqrt((double)resCol[b * n + j]));
    }
    const double pv = (double)p[i];
    p[i] = (float)(pv - k.weightDecay * pv - k.base * step);
  }
}
`;

/** LOMO (@kstar/optim-lomo), bit-exact with cpu: p ← p·decay − lr·(clamp(g, ±gclip)·gscale) in float64. */
export const lomoSource = (name: string): string => `
extern "C" __global__ void ${name}(float* __restrict__ p, const float* __restrict__ g, long long n, double lr, double decay,
    double gscale, double gclip) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    double gv = (double)g[i];
    if (gv > gclip) gv = gclip; else if (gv < -gclip) gv = -gclip;
    p[i] = (float)__dsub_rn(__dmul_rn((double)p[i], decay), __dmul_rn(lr, __dmul_rn(gv, gscale)));
  }
}
`;

/** Every source of these kernels, by kernel name: what the nvcc test compiles. */
export function kstarFactoredSources(): Record<string, string> {
  const all: Record<string, (name: string) => string> = {
    kstar_factored_rows: factoredRowsSource,
    kstar_factored_col_partial: factoredColPartialSource,
    kstar_factored_cols: factoredColsSource,
    kstar_factored_vector: factoredVectorSource,
    kstar_factored_row_mean: factoredRowMeanSource,
    kstar_factored_sums: factoredSumsSource,
    kstar_factored_scalars: factoredScalarsSource,
    kstar_factored_update: factoredUpdateSource,
    kstar_came_moment: cameMomentSource,
    kstar_came_res_rows: cameResRowsSource,
    kstar_came_res_col_partial: cameResColPartialSource,
    kstar_came_update: cameUpdateSource,
    kstar_lomo: lomoSource,
  };
  return Object.fromEntries(Object.entries(all).map(([name, make]) => [name, make(name)]));
}
