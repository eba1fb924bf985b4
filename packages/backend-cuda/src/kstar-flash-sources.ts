/**
 * CUDA C sources of K*'s fused causal attention (`KstarFlashAttention`, `KstarFlashAttentionGrad` of
 * @kstar/kernels' flash-attention.ts), the same algorithm as its WebGPU program (flash-attention-program.ts):
 *
 * - q, o, do [BH, Tq, hd]; k, v [BH, Tk, hd]; lse, D [BH, Tq]. Query row i sits at position `off + i` and sees keys
 *   j ≤ off + i (j < Tk).
 * - Grid (⌈rows / blockDim⌉, BH): each thread owns one row (a query for the forward and dq, a key for dk and dv),
 *   holds that row's vectors in registers (the head dimension is a compile-time constant, loops unrolled) and streams
 *   tiles of the other side through shared memory, where every thread reads the same entry (a broadcast). Tiles no
 *   row of the block can see are neither loaded nor computed. The block's row count is `blockDim.x`, so a host build
 *   with one thread per block runs the same code (test/flash-host.test.ts).
 * - The [Tq, Tk] scores never exist: the forward keeps a running max m and sum l per row (online softmax: when a
 *   score exceeds m, l and the output row are rescaled by exp(m_old − m_new)) and saves lse = m + log l; the backward
 *   recomputes p = exp(scale·q·k − lse).
 * - Float32 throughout. Head dims up to 128 (GPT-2: 64): at 128 the 2–3 register rows spill to local memory.
 */

/** Threads (rows) per block on the GPU. */
export const FLASH_BLOCK = 64;

/** Largest head dimension the kernels take. */
export const FLASH_MAX_HEAD_DIM = 128;

/** Rows of a shared tile: two tiles of tile·hd floats stay within 32 KiB (48 KiB is the static limit). */
export function flashTile(hd: number): number {
  return Math.max(1, Math.min(64, Math.floor(4096 / hd)));
}

function checkShape(hd: number, tile: number): void {
  if (!Number.isInteger(hd) || hd < 1 || hd > FLASH_MAX_HEAD_DIM)
    throw new Error(`flash attention head dim ${hd} must be an integer in [1, ${FLASH_MAX_HEAD_DIM}]`);
  if (!Number.isInteger(tile) || tile < 1 || 2 * tile * (hd + 1) > 12_288)
    throw new Error(
      `flash attention tile ${tile} for head dim ${hd} must be a positive integer with tiles ≤ 48 KiB`,
    );
}

/** Kernel names carry the head dim and tile: one compiled module per shape. */
export const flashKernelName = (kind: 'fwd' | 'dq' | 'dk' | 'dv', hd: number, tile: number): string =>
  `kstar_flash_${kind}_h${hd}_t${tile}`;

const PRELUDE = (hd: number, tile: number) => `static constexpr int HD = ${hd}, TILE = ${tile};`;

/** Integer min (no header or builtin needed under NVRTC); cooperative load of rows [r0, r0 + count) of src (rows of HD floats from row `base`) into dst. */
const LOAD_TILE = `__device__ __forceinline__ int flashMin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ void flashLoadTile(float* dst, const float* __restrict__ src, long long base,
    int r0, int count) {
  const float* s = src + (base + r0) * HD;
  for (int e = threadIdx.x; e < count * HD; e += blockDim.x) dst[e] = s[e];
}
__device__ __forceinline__ float flashDot(const float* a, const float* b) {
  float s = 0.f;
#pragma unroll
  for (int c = 0; c < HD; ++c) s = fmaf(a[c], b[c], s);
  return s;
}`;

/**
 * Query-row preamble of the forward and dq: row i (clamped to ic for the rows past Tq, which compute but do not
 * write), its last visible key lim, the block's last visible key wlim.
 */
const QUERY_ROW = `const long long bh = blockIdx.y;
  const int q0 = blockIdx.x * blockDim.x, i = q0 + threadIdx.x;
  const int ic = i < Tq ? i : Tq - 1;
  const int lim = flashMin(off + ic, Tk - 1);
  const int wlim = flashMin(off + flashMin(q0 + (int)blockDim.x, Tq) - 1, Tk - 1);
  const long long qRow = (bh * Tq + ic) * HD;`;

/**
 * Forward: o [BH, Tq, hd] and lse [BH, Tq] (the caller points lse past o in one packed output, the kernel
 * contract's layout). Online softmax, one key at a time over shared K and V tiles.
 */
export function flashForwardSource(name: string, hd: number, tile = flashTile(hd)): string {
  checkShape(hd, tile);
  return `${PRELUDE(hd, tile)}
${LOAD_TILE}
extern "C" __global__ void ${name}(float* __restrict__ o, float* __restrict__ lse, const float* __restrict__ q,
    const float* __restrict__ k, const float* __restrict__ v, int Tq, int Tk, int off, float scale) {
  __shared__ float Ks[TILE * HD];
  __shared__ float Vs[TILE * HD];
  ${QUERY_ROW}
  float qr[HD], acc[HD];
#pragma unroll
  for (int c = 0; c < HD; ++c) { qr[c] = q[qRow + c] * scale; acc[c] = 0.f; }
  float m = -3.0e38f, l = 0.f; // below any score: the first key rescales by exp(−huge) = 0
  for (int k0 = 0; k0 <= wlim; k0 += TILE) {
    const int count = flashMin(TILE, wlim - k0 + 1);
    __syncthreads(); // the previous tile is consumed
    flashLoadTile(Ks, k, bh * Tk, k0, count);
    flashLoadTile(Vs, v, bh * Tk, k0, count);
    __syncthreads();
    const int jEnd = flashMin(count, lim - k0 + 1); // the causal mask: keys past lim are never read
    for (int j = 0; j < jEnd; ++j) {
      const float s = flashDot(qr, Ks + j * HD);
      if (s > m) { // a new row max: rescale what was summed under the old one
        const float corr = expf(m - s);
        l *= corr;
#pragma unroll
        for (int c = 0; c < HD; ++c) acc[c] *= corr;
        m = s;
      }
      const float p = expf(s - m);
      l += p;
#pragma unroll
      for (int c = 0; c < HD; ++c) acc[c] = fmaf(p, Vs[j * HD + c], acc[c]);
    }
  }
  if (i < Tq) {
    const float inv = 1.f / l;
#pragma unroll
    for (int c = 0; c < HD; ++c) o[qRow + c] = acc[c] * inv;
    lse[bh * Tq + i] = m + logf(l);
  }
}
`;
}

/** D = rowsum(do ∘ o) [rows], one thread a row (grid-stride). */
export const flashRowDotSource = (name: string): string => `
extern "C" __global__ void ${name}(float* __restrict__ d, const float* __restrict__ o, const float* __restrict__ g,
    long long n, long long hd) {
  for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < n; r += (long long)gridDim.x * blockDim.x) {
    float acc = 0.f;
    for (long long c = 0; c < hd; ++c) acc = fmaf(o[r * hd + c], g[r * hd + c], acc);
    d[r] = acc;
  }
}
`;

/** dq = scale · Σ_j p·(dp − D)·k over the row's visible keys, p = exp(scale·q·k − lse), dp = do·v. */
export function flashDqSource(name: string, hd: number, tile = flashTile(hd)): string {
  checkShape(hd, tile);
  return `${PRELUDE(hd, tile)}
${LOAD_TILE}
extern "C" __global__ void ${name}(float* __restrict__ dq, const float* __restrict__ q, const float* __restrict__ k,
    const float* __restrict__ v, const float* __restrict__ g, const float* __restrict__ lse,
    const float* __restrict__ D, int Tq, int Tk, int off, float scale) {
  __shared__ float Ks[TILE * HD];
  __shared__ float Vs[TILE * HD];
  ${QUERY_ROW}
  float qr[HD], gr[HD], acc[HD];
#pragma unroll
  for (int c = 0; c < HD; ++c) { qr[c] = q[qRow + c] * scale; gr[c] = g[qRow + c]; acc[c] = 0.f; }
  const float li = lse[bh * Tq + ic], di = D[bh * Tq + ic];
  for (int k0 = 0; k0 <= wlim; k0 += TILE) {
    const int count = flashMin(TILE, wlim - k0 + 1);
    __syncthreads();
    flashLoadTile(Ks, k, bh * Tk, k0, count);
    flashLoadTile(Vs, v, bh * Tk, k0, count);
    __syncthreads();
    const int jEnd = flashMin(count, lim - k0 + 1);
    for (int j = 0; j < jEnd; ++j) {
      const float ds = expf(flashDot(qr, Ks + j * HD) - li) * (flashDot(gr, Vs + j * HD) - di);
#pragma unroll
      for (int c = 0; c < HD; ++c) acc[c] = fmaf(ds, Ks[j * HD + c], acc[c]);
    }
  }
  if (i < Tq) {
#pragma unroll
    for (int c = 0; c < HD; ++c) dq[qRow + c] = acc[c] * scale;
  }
}
`;
}

/**
 * dk = scale · Σ_i p·(dp − D)·q, or dv = Σ_i p·do, over the queries that see key j (off + i ≥ j); one thread a key,
 * query tiles (q, do, lse and D) streamed from the block's first visible one.
 */
export function flashDkvSource(name: string, which: 'dk' | 'dv', hd: number, tile = flashTile(hd)): string {
  checkShape(hd, tile);
  const dk = which === 'dk';
  return `${PRELUDE(hd, tile)}
${LOAD_TILE}
extern "C" __global__ void ${name}(float* __restrict__ out, const float* __restrict__ q, const float* __restrict__ k,
    const float* __restrict__ v, const float* __restrict__ g, const float* __restrict__ lse,
    const float* __restrict__ D, int Tq, int Tk, int off, float scale) {
  __shared__ float Qs[TILE * HD];
  __shared__ float Gs[TILE * HD];
  __shared__ float Ls[TILE];
  ${dk ? '__shared__ float Ds[TILE];' : ''}
  const long long bh = blockIdx.y;
  const int j0 = blockIdx.x * blockDim.x, j = j0 + threadIdx.x;
  const int jc = j < Tk ? j : Tk - 1;
  const long long kRow = (bh * Tk + jc) * HD;
  float kr[HD], acc[HD]${dk ? ', vr[HD]' : ''};
#pragma unroll
  for (int c = 0; c < HD; ++c) { kr[c] = k[kRow + c] * scale; acc[c] = 0.f;${dk ? ' vr[c] = v[kRow + c];' : ''} }
  // Query i sees key j when off + i ≥ j: the first tile any query of the block sees holds i = j0 − off.
  const int first = j0 - off > 0 ? j0 - off : 0;
  for (int i0 = first - first % TILE; i0 < Tq; i0 += TILE) {
    const int count = flashMin(TILE, Tq - i0);
    __syncthreads();
    flashLoadTile(Qs, q, bh * Tq, i0, count);
    flashLoadTile(Gs, g, bh * Tq, i0, count);
    for (int e = threadIdx.x; e < count; e += blockDim.x) {
      Ls[e] = lse[bh * Tq + i0 + e];${dk ? '\n      Ds[e] = D[bh * Tq + i0 + e];' : ''}
    }
    __syncthreads();
    int iFrom = jc - off - i0; // the causal mask: queries before key j's position never see it
    iFrom = iFrom < 0 ? 0 : iFrom;
    for (int ii = iFrom; ii < count; ++ii) {
      const float p = expf(flashDot(kr, Qs + ii * HD) - Ls[ii]);
      ${
        dk
          ? `const float w = p * (flashDot(vr, Gs + ii * HD) - Ds[ii]);
#pragma unroll
      for (int c = 0; c < HD; ++c) acc[c] = fmaf(w, Qs[ii * HD + c], acc[c]);`
          : `#pragma unroll
      for (int c = 0; c < HD; ++c) acc[c] = fmaf(p, Gs[ii * HD + c], acc[c]);`
      }
    }
  }
  if (j < Tk) {
#pragma unroll
    for (int c = 0; c < HD; ++c) out[kRow + c] = acc[c]${dk ? ' * scale' : ''};
  }
}
`;
}

/** The row-dot kernel's name (one source for every head dim). */
export const FLASH_ROWDOT = 'kstar_flash_rowdot';

/** The four sources of head dim `hd` (and the shared row dot), by kernel name. */
export function flashSources(hd: number, tile = flashTile(hd)): Record<string, string> {
  const n = (kind: 'fwd' | 'dq' | 'dk' | 'dv') => flashKernelName(kind, hd, tile);
  return {
    [n('fwd')]: flashForwardSource(n('fwd'), hd, tile),
    [n('dq')]: flashDqSource(n('dq'), hd, tile),
    [n('dk')]: flashDkvSource(n('dk'), 'dk', hd, tile),
    [n('dv')]: flashDkvSource(n('dv'), 'dv', hd, tile),
    [FLASH_ROWDOT]: flashRowDotSource(FLASH_ROWDOT),
  };
}

/** What the nvcc test compiles: GPT-2's head dim (64), the largest (128) and an odd one (24). */
export function kstarFlashSources(): Record<string, string> {
  return { ...flashSources(64), ...flashSources(128), ...flashSources(24) };
}
