import { blockReduceSource } from './block-reduce.ts';
/**
 * CUDA C sources of K*'s own fused kernels (the `Kstar*` kernels of @kstar/kernels): LayerNorm, causal softmax,
 * cross-entropy (each with its gradient), AdamW, Lion, in-place add (slice write is a device copy). Plain strings, compiled by NVRTC on first use like
 * the tfjs kernels' sources; CI compiles them with nvcc. Row kernels run one block of ROW_BLOCK threads a row and
 * reduce with warp shuffles; element-wise ones are grid-stride loops.
 */

/** Threads of a row kernel's block (a multiple of 32, at most 1024). */
export const ROW_BLOCK = 256;

/** Rows summed by one thread of LayerNorm's dγ/dβ column reduction (N/LN_ROWS partial sums, then their sum). */
export const LN_ROWS = 64;

/** Block-wide sum and max (block-reduce.ts): every thread gets the result. */
const BLOCK_REDUCE = `#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
${blockReduceSource('Sum', 'float', (a, b) => `${a} + ${b}`, '0.f')}${blockReduceSource('Max', 'float', (a, b) => `fmaxf(${a}, ${b})`, '-INFINITY')}`;

const GRID_STRIDE =
  'for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)';

/** LayerNorm forward, one block a row of x [N, D]: two-pass μ and σ², then y = (x − μ)·rstd·γ + β. */
export const layerNormSource = (name: string): string => `${BLOCK_REDUCE}
extern "C" __global__ void ${name}(float* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd,
    const float* __restrict__ x, const float* __restrict__ g, const float* __restrict__ b, long long cols, float eps) {
  const long long base = (long long)blockIdx.x * cols;
  float s = 0.f;
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) s += x[base + j];
  const float mu = blockSum(s) / (float)cols;
  float q = 0.f;
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) { float d = x[base + j] - mu; q += d * d; }
  const float rs = 1.f / sqrtf(blockSum(q) / (float)cols + eps);
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) y[base + j] = (x[base + j] - mu) * rs * g[j] + b[j];
  if (threadIdx.x == 0) { mean[blockIdx.x] = mu; rstd[blockIdx.x] = rs; }
}
`;

/** LayerNorm dx, one block a row: x̂ = (x − μ)·rstd, g = dy·γ, dx = rstd·(g − mean(g) − x̂·mean(g·x̂)). */
export const layerNormGradDxSource = (name: string): string => `${BLOCK_REDUCE}
extern "C" __global__ void ${name}(float* __restrict__ dx, const float* __restrict__ x, const float* __restrict__ dy,
    const float* __restrict__ g, const float* __restrict__ mean, const float* __restrict__ rstd, long long cols) {
  const long long base = (long long)blockIdx.x * cols;
  const float mu = mean[blockIdx.x], rs = rstd[blockIdx.x];
  float s1 = 0.f, s2 = 0.f;
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) {
    float gy = dy[base + j] * g[j];
    s1 += gy;
    s2 += gy * (x[base + j] - mu) * rs;
  }
  const float m1 = blockSum(s1) / (float)cols;
  const float m2 = blockSum(s2) / (float)cols;
  for (long long j = threadIdx.x; j < cols; j += blockDim.x)
    dx[base + j] = rs * (dy[base + j] * g[j] - m1 - (x[base + j] - mu) * rs * m2);
}
`;

/**
 * LayerNorm dγ and dβ, first pass: partial [C, 2D] over chunks of ${LN_ROWS} rows (columns 0..D−1 dγ = Σ dy·x̂,
 * D..2D−1 dβ = Σ dy); neighbouring threads read neighbouring columns.
 */
export const layerNormGradPartialSource = (name: string): string => `
extern "C" __global__ void ${name}(float* __restrict__ partial, const float* __restrict__ x, const float* __restrict__ dy,
    const float* __restrict__ mean, const float* __restrict__ rstd, long long rows, long long cols) {
  const long long n = ((rows + ${LN_ROWS} - 1) / ${LN_ROWS}) * 2 * cols;
  ${GRID_STRIDE} {
    long long chunk = i / (2 * cols), j = i - chunk * 2 * cols;
    bool isBeta = j >= cols; long long d = isBeta ? j - cols : j;
    long long r0 = chunk * ${LN_ROWS}, r1 = r0 + ${LN_ROWS} < rows ? r0 + ${LN_ROWS} : rows;
    float acc = 0.f;
    for (long long r = r0; r < r1; ++r) {
      float v = dy[r * cols + d];
      acc += isBeta ? v : v * (x[r * cols + d] - mean[r]) * rstd[r];
    }
    partial[i] = acc;
  }
}
`;

/** Sums [chunks, width] over its chunks into out [width] (the second pass of a column reduction). */
export const columnSumSource = (name: string): string => `
extern "C" __global__ void ${name}(float* __restrict__ out, const float* __restrict__ partial, long long chunks, long long n) {
  ${GRID_STRIDE} {
    float acc = 0.f;
    for (long long c = 0; c < chunks; ++c) acc += partial[c * n + i];
    out[i] = acc;
  }
}
`;

/**
 * Causal softmax of scores s [rows, T] (rows = B·H·T; row r is query r mod T): p = softmax(scale·s) over columns
 * j ≤ r mod T, exactly 0 above the diagonal. One block a row.
 */
export const causalSoftmaxSource = (name: string): string => `${BLOCK_REDUCE}
extern "C" __global__ void ${name}(float* __restrict__ p, const float* __restrict__ s, long long cols, float scale) {
  const long long base = (long long)blockIdx.x * cols, last = (long long)blockIdx.x % cols;
  float m = -INFINITY;
  for (long long j = threadIdx.x; j <= last; j += blockDim.x) m = fmaxf(m, s[base + j] * scale);
  m = blockMax(m);
  float z = 0.f;
  for (long long j = threadIdx.x; j <= last; j += blockDim.x) z += expf(s[base + j] * scale - m);
  const float inv = 1.f / blockSum(z);
  for (long long j = threadIdx.x; j < cols; j += blockDim.x)
    p[base + j] = j <= last ? expf(s[base + j] * scale - m) * inv : 0.f;
}
`;

/** Causal softmax gradient from p alone: ds = scale·p·(dp − Σ_{j ≤ r mod T} dp·p), 0 above the diagonal. */
export const causalSoftmaxGradSource = (name: string): string => `${BLOCK_REDUCE}
extern "C" __global__ void ${name}(float* __restrict__ ds, const float* __restrict__ p, const float* __restrict__ dp,
    long long cols, float scale) {
  const long long base = (long long)blockIdx.x * cols, last = (long long)blockIdx.x % cols;
  float acc = 0.f;
  for (long long j = threadIdx.x; j <= last; j += blockDim.x) acc += dp[base + j] * p[base + j];
  const float dot = blockSum(acc);
  for (long long j = threadIdx.x; j < cols; j += blockDim.x)
    ds[base + j] = j <= last ? scale * p[base + j] * (dp[base + j] - dot) : 0.f;
}
`;

/**
 * Cross-entropy rows, one block a row of logits z [N, V]: lse = logsumexp(z), rowLoss = lse − z[target] (a target
 * outside [0, V) picks 0, like tfjs's one-hot).
 */
export const crossEntropyRowsSource = (name: string): string => `${BLOCK_REDUCE}
extern "C" __global__ void ${name}(float* __restrict__ rowLoss, float* __restrict__ lse, const float* __restrict__ z,
    const int* __restrict__ targets, long long cols) {
  const long long base = (long long)blockIdx.x * cols;
  float m = -INFINITY;
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, z[base + j]);
  m = blockMax(m);
  float s = 0.f;
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) s += expf(z[base + j] - m);
  const float l = m + logf(blockSum(s));
  if (threadIdx.x == 0) {
    int t = targets[blockIdx.x];
    rowLoss[blockIdx.x] = l - (t >= 0 && t < cols ? z[base + t] : 0.f);
    lse[blockIdx.x] = l;
  }
}
`;

/** Mean of x [n] into out [1]: one block. */
export const meanSource = (name: string): string => `${BLOCK_REDUCE}
extern "C" __global__ void ${name}(float* __restrict__ out, const float* __restrict__ x, long long n) {
  float s = 0.f;
  for (long long j = threadIdx.x; j < n; j += blockDim.x) s += x[j];
  s = blockSum(s);
  if (threadIdx.x == 0) out[0] = s / (float)n;
}
`;

/** Cross-entropy gradient: dz = (exp(z − lse) − [v == target])·dy/N over [N, V]. */
export const crossEntropyGradSource = (name: string): string => `
extern "C" __global__ void ${name}(float* __restrict__ dz, const float* __restrict__ z, const float* __restrict__ lse,
    const int* __restrict__ targets, const float* __restrict__ dy, long long cols, long long n, float invN) {
  const float s = dy[0] * invN;
  ${GRID_STRIDE} {
    long long r = i / cols, v = i - r * cols;
    dz[i] = (expf(z[i] - lse[r]) - (v == targets[r] ? 1.f : 0.f)) * s;
  }
}
`;

/**
 * AdamW in place (torch.optim.AdamW): m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * p ← p·decay − (m / (√v / sqrtBc2 + eps))·stepSize.
 */
export const adamwSource = (name: string): string => `
extern "C" __global__ void ${name}(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
    float* __restrict__ v, long long n, float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2,
    float decay, float stepSize, float sqrtBc2, float eps) {
  ${GRID_STRIDE} {
    float gi = g[i];
    float mi = beta1 * m[i] + oneMinusBeta1 * gi;
    float vi = beta2 * v[i] + oneMinusBeta2 * gi * gi;
    m[i] = mi; v[i] = vi;
    p[i] = p[i] * decay - (mi / (sqrtf(vi) / sqrtBc2 + eps)) * stepSize;
  }
}
`;

/**
 * The same AdamW 4 elements a thread (n counts float4s: the tensor's length is a multiple of 4 and its buffers 16-byte
 * aligned): one 128-bit load and store per array, the per-element arithmetic of `adamwSource` unchanged. The optimizer
 * streams 7 floats an element, so the update is bandwidth-bound; wider accesses take fewer instructions per byte.
 */
const ADAMW_ONE = `
__device__ __forceinline__ void adamwOne(float& p, float g, float& m, float& v, float beta1, float oneMinusBeta1,
    float beta2, float oneMinusBeta2, float decay, float stepSize, float sqrtBc2, float eps) {
  m = beta1 * m + oneMinusBeta1 * g;
  v = beta2 * v + oneMinusBeta2 * g * g;
  p = p * decay - (m / (sqrtf(v) / sqrtBc2 + eps)) * stepSize;
}
`;

/** The 128-bit AdamW loop body over float4 arrays p, g, m, v (constants as local names). */
const ADAMW_VEC4_BODY = `${GRID_STRIDE} {
    float4 pi = p[i], gi = g[i], mi = m[i], vi = v[i];
    adamwOne(pi.x, gi.x, mi.x, vi.x, beta1, oneMinusBeta1, beta2, oneMinusBeta2, decay, stepSize, sqrtBc2, eps);
    adamwOne(pi.y, gi.y, mi.y, vi.y, beta1, oneMinusBeta1, beta2, oneMinusBeta2, decay, stepSize, sqrtBc2, eps);
    adamwOne(pi.z, gi.z, mi.z, vi.z, beta1, oneMinusBeta1, beta2, oneMinusBeta2, decay, stepSize, sqrtBc2, eps);
    adamwOne(pi.w, gi.w, mi.w, vi.w, beta1, oneMinusBeta1, beta2, oneMinusBeta2, decay, stepSize, sqrtBc2, eps);
    p[i] = pi; m[i] = mi; v[i] = vi;
  }`;

export const adamwVec4Source = (name: string): string => `${ADAMW_ONE}
extern "C" __global__ void ${name}(float4* __restrict__ p, const float4* __restrict__ g, float4* __restrict__ m,
    float4* __restrict__ v, long long n, float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2,
    float decay, float stepSize, float sqrtBc2, float eps) {
  ${ADAMW_VEC4_BODY}
}
`;

/** Updates one batched AdamW launch takes: its parameter struct (2,432 bytes) stays within the 4 KB of a launch. */
export const ADAMW_GROUP = 32;

/** The order of the constants in each update's row of `AdamwGroup.k` (@kstar/kernels' adamw.ts names). */
export const ADAMW_CONSTS = [
  'beta1',
  'oneMinusBeta1',
  'beta2',
  'oneMinusBeta2',
  'decay',
  'stepSize',
  'sqrtBc2',
  'eps',
] as const;

/**
 * AdamW over up to ADAMW_GROUP tensors in one launch (a step's updates queued by adamw-queue.ts): block row y updates
 * tensor y, through the 128-bit loop where `vec4` is set (`n` then counts float4s), else one element a thread; the
 * arithmetic is `adamwOne`'s, as in the one-tensor kernels.
 */
export const adamwMultiSource = (name: string): string => `${ADAMW_ONE}
struct AdamwGroup { long long p[${ADAMW_GROUP}], g[${ADAMW_GROUP}], m[${ADAMW_GROUP}], v[${ADAMW_GROUP}], n[${ADAMW_GROUP}];
  float k[${ADAMW_GROUP}][8]; int vec4[${ADAMW_GROUP}]; };
extern "C" __global__ void ${name}(AdamwGroup u) {
  const int t = blockIdx.y;
  const long long n = u.n[t];
  const float beta1 = u.k[t][0], oneMinusBeta1 = u.k[t][1], beta2 = u.k[t][2], oneMinusBeta2 = u.k[t][3];
  const float decay = u.k[t][4], stepSize = u.k[t][5], sqrtBc2 = u.k[t][6], eps = u.k[t][7];
  if (u.vec4[t]) {
    float4* __restrict__ p = (float4*)u.p[t]; const float4* __restrict__ g = (const float4*)u.g[t];
    float4* __restrict__ m = (float4*)u.m[t]; float4* __restrict__ v = (float4*)u.v[t];
    ${ADAMW_VEC4_BODY}
  } else {
    float* __restrict__ p = (float*)u.p[t]; const float* __restrict__ g = (const float*)u.g[t];
    float* __restrict__ m = (float*)u.m[t]; float* __restrict__ v = (float*)u.v[t];
    ${GRID_STRIDE} {
      float pi = p[i], mi = m[i], vi = v[i];
      adamwOne(pi, g[i], mi, vi, beta1, oneMinusBeta1, beta2, oneMinusBeta2, decay, stepSize, sqrtBc2, eps);
      p[i] = pi; m[i] = mi; v[i] = vi;
    }
  }
}
`;

/** Lion in place (lion_pytorch): c = β1·m + (1−β1)·g; p ← p·decay − lr·sign(c); m ← β2·m + (1−β2)·g (sign(0) = 0). */
export const lionSource = (name: string): string => `
extern "C" __global__ void ${name}(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m, long long n,
    float lr, float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2, float decay) {
  ${GRID_STRIDE} {
    float gi = g[i], mi = m[i];
    float c = beta1 * mi + oneMinusBeta1 * gi;
    float sc = c != c ? c : (c > 0.f ? 1.f : (c < 0.f ? -1.f : 0.f));
    p[i] = p[i] * decay - lr * sc;
    m[i] = beta2 * mi + oneMinusBeta2 * gi;
  }
}
`;

/** acc += g in place. */
export const addInPlaceSource = (name: string): string => `
extern "C" __global__ void ${name}(float* __restrict__ acc, const float* __restrict__ g, long long n) {
  ${GRID_STRIDE} acc[i] += g[i];
}
`;

/**
 * 24-bit split (@kstar/kernels' split24.ts, bit-exact with its cpu kernel): each thread splits 4 values into their
 * bf16 halves (hi, two per word) and int8 corrections ρ (lo, four per word); words past n stay 0.
 */
export const split24Source = (name: string): string => `
extern "C" __global__ void ${name}(int* __restrict__ hi, int* __restrict__ lo, const unsigned int* __restrict__ w, long long n) {
  const long long groups = (n + 3) / 4, hiWords = (n + 1) / 2;
  for (long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x; j < groups; j += (long long)gridDim.x * blockDim.x) {
    unsigned int h[4] = {0u, 0u, 0u, 0u}, loWord = 0u;
    for (int k = 0; k < 4; ++k) {
      long long i = 4 * j + k;
      if (i >= n) break;
      unsigned int b = w[i], mag = b & 0x7fffffffu;
      int rho = 0;
      if (mag >= 0x7f800000u) {
        h[k] = mag == 0x7f800000u ? (((b >> 16) & 0x8000u) | 0x7f80u) : 0x7fc0u;
      } else {
        unsigned int hm = mag >= 0x7f7f8000u ? 0x7f7fu : (mag + 0x7fffu + ((mag >> 16) & 1u)) >> 16;
        int d = (int)mag - (int)(hm << 16);
        int r = ((d < 0 ? -d : d) + 129) / 258;
        if (r > 127) r = 127;
        rho = d < 0 ? -r : r;
        h[k] = ((b >> 16) & 0x8000u) | hm;
      }
      loWord |= ((unsigned int)rho & 0xffu) << (8 * k);
    }
    if (2 * j < hiWords) hi[2 * j] = (int)(h[0] | (h[1] << 16));
    if (2 * j + 1 < hiWords) hi[2 * j + 1] = (int)(h[2] | (h[3] << 16));
    lo[j] = (int)loWord;
  }
}
`;

/** 24-bit join: the float32 bit pattern of hi corrected by ρ (reconstruct), or of hi alone when hasLo is 0 (expand). */
export const join24Source = (name: string): string => `
extern "C" __global__ void ${name}(unsigned int* __restrict__ out, const int* __restrict__ hi, const int* __restrict__ lo, int hasLo, long long n) {
  ${GRID_STRIDE} {
    unsigned int h = ((unsigned int)hi[i >> 1] >> (16 * (i & 1))) & 0xffffu;
    int rho = hasLo ? ((int)((unsigned int)lo[i >> 2] << (24 - 8 * (i & 3)))) >> 24 : 0;
    unsigned int sign = (h & 0x8000u) << 16, hm = h & 0x7fffu;
    out[i] = hm >= 0x7f80u ? (sign | (hm << 16)) : (sign | (unsigned int)((int)(hm << 16) + 258 * rho));
  }
}
`;

/** Every source of K*'s fused kernels, by kernel name: what the nvcc test compiles. */
export function kstarSources(): Record<string, string> {
  const all: Record<string, (name: string) => string> = {
    kstar_layer_norm: layerNormSource,
    kstar_layer_norm_grad_dx: layerNormGradDxSource,
    kstar_layer_norm_grad_partial: layerNormGradPartialSource,
    kstar_column_sum: columnSumSource,
    kstar_causal_softmax: causalSoftmaxSource,
    kstar_causal_softmax_grad: causalSoftmaxGradSource,
    kstar_cross_entropy_rows: crossEntropyRowsSource,
    kstar_mean: meanSource,
    kstar_cross_entropy_grad: crossEntropyGradSource,
    kstar_adamw: adamwSource,
    kstar_adamw_vec4: adamwVec4Source,
    kstar_adamw_multi: adamwMultiSource,
    kstar_lion: lionSource,
    kstar_add_in_place: addInPlaceSource,
    kstar_split24: split24Source,
    kstar_join24: join24Source,
  };
  return Object.fromEntries(Object.entries(all).map(([name, make]) => [name, make(name)]));
}
