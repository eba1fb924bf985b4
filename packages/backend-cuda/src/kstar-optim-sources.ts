import { dynamicMap } from '@kstar/kernels';
import { blockReduceSource } from './block-reduce.ts';
import { ADAMW_CONSTS } from './kstar-sources.ts';

/**
 * CUDA C sources of K*'s 8-bit and sparse optimizer kernels: block-wise absmax int8 quantize/dequantize
 * (@kstar/kernels' quantize.ts), pack/unpack (pack.ts), the fused 8-bit Adam step (@kstar/optim-adam8bit) and
 * Adagrad (@kstar/optim-lazy-adagrad, dense or row-lazy). Bit-exact with the cpu kernels: the code search and
 * rounding are the same float32 operations, and where the cpu kernels compute in float64 (JS numbers) these do too,
 * through the `__d*_rn` intrinsics (no FMA contraction, IEEE rounding), storing float32 as the cpu's typed arrays do.
 * CI builds the quantize and Adam sources for the host (g++) and compares them with the cpu kernels bit for bit.
 */

/** Threads of the per-block absmax kernels (one CUDA block per quantization block). */
export const ABSMAX_BLOCK = 256;

const GRID_STRIDE =
  'for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)';

/** The dynamic map's float32 bits as a C array (exact). */
function codeBook(name: string, signed: boolean): string {
  const bits = new Uint32Array(dynamicMap(signed).buffer.slice(0));
  return `__device__ const unsigned int ${name}[256] = {${Array.from(bits, (b) => `${b}u`).join(',')}};`;
}

/**
 * Quantization helpers: the two code books, `absmaxOf` (NaN wins over everything, +Inf over finite values: the cpu's
 * blockAbsmax), `quantValue` (nearest code, ties down, zero code for a zero/Inf/NaN block, bitsandbytes' sign fix)
 * and `dequantValue` (code·absmax, NaN for an Inf/NaN block).
 */
const QUANT = `${codeBook('CODE_S', true)}
${codeBook('CODE_U', false)}
__device__ __forceinline__ float codeAt(const unsigned int* book, int c) { return __uint_as_float(book[c]); }
__device__ __forceinline__ float nanMax(float a, float b) { return a != a ? a : (b != b ? b : (b > a ? b : a)); }
__device__ __forceinline__ bool finitePositive(float a) { return a > 0.f && a < __uint_as_float(0x7f800000u); }
__device__ int quantValue(const unsigned int* book, float x, float absmax, int zero, int signFix) {
  if (!finitePositive(absmax)) return zero;
  const float v = __fdiv_rn(x, absmax);
  int lo = 0;
  for (int step = 128; step >= 1; step >>= 1) if (codeAt(book, lo + step) <= v) lo += step;
  const int hi = lo == 255 ? 255 : lo + 1;
  int c = v > __fmul_rn(__fadd_rn(codeAt(book, lo), codeAt(book, hi)), 0.5f) ? hi : lo;
  if (signFix && v < 0.f && codeAt(book, c) >= 0.f) c -= 1;
  return c;
}
__device__ __forceinline__ float dequantValue(const unsigned int* book, int c, float absmax) {
  return absmax < __uint_as_float(0x7f800000u) ? __fmul_rn(codeAt(book, c), absmax) : __uint_as_float(0x7fc00000u);
}
__device__ __forceinline__ int byteAt(const int* words, long long i) {
  return (int)(((unsigned int)words[i >> 2] >> (8 * (i & 3))) & 0xffu);
}
`;

/** Block-wide NaN-propagating max (every thread gets it); blockDim.x a multiple of 32, or 1 (the host build). */
const BLOCK_NAN_MAX = blockReduceSource('NanMax', 'float', (a, b) => `nanMax(${a}, ${b})`, '0.f');

/** absmax[b] = max |x| over block b of `blockSize` elements (the last may be shorter): one CUDA block each. */
export const quantAbsmaxSource = (name: string): string => `${QUANT}${BLOCK_NAN_MAX}
extern "C" __global__ void ${name}(float* __restrict__ absmax, const float* __restrict__ x, long long n, long long blockSize) {
  const long long start = (long long)blockIdx.x * blockSize;
  const long long end = start + blockSize < n ? start + blockSize : n;
  float m = 0.f;
  for (long long i = start + threadIdx.x; i < end; i += blockDim.x) m = nanMax(m, fabsf(x[i]));
  m = blockNanMax(m);
  if (threadIdx.x == 0) absmax[blockIdx.x] = m;
}
`;

/** Codes, one thread a word of four: the nearest code of x/absmax (signed or unsigned map); unused bytes 0. */
export const quantCodesSource = (name: string): string => `${QUANT}
extern "C" __global__ void ${name}(int* __restrict__ codes, const float* __restrict__ x, const float* __restrict__ absmax,
    long long count, long long blockSize, int isSigned, int signFix) {
  const unsigned int* book = isSigned ? CODE_S : CODE_U;
  const int zero = isSigned ? 127 : 0;
  const long long n = (count + 3) / 4;
  ${GRID_STRIDE} {
    unsigned int word = 0u;
    for (int k = 0; k < 4; ++k) {
      const long long e = 4 * i + k;
      if (e >= count) break;
      word |= (unsigned int)quantValue(book, x[e], absmax[e / blockSize], zero, signFix) << (8 * k);
    }
    codes[i] = (int)word;
  }
}
`;

/** out[i] = code[c_i]·absmax[block(i)] (NaN for an Inf/NaN block). */
export const dequantSource = (name: string): string => `${QUANT}
extern "C" __global__ void ${name}(float* __restrict__ out, const int* __restrict__ codes, const float* __restrict__ absmax,
    long long n, long long blockSize, int isSigned) {
  const unsigned int* book = isSigned ? CODE_S : CODE_U;
  ${GRID_STRIDE} out[i] = dequantValue(book, byteAt(codes, i), absmax[i / blockSize]);
}
`;

/** Packs the low `bits` (8 or 16) of each value, 32/bits a word, little-endian; unused slots 0. */
export const packSource = (name: string): string => `
extern "C" __global__ void ${name}(int* __restrict__ out, const int* __restrict__ values, long long count, int bits) {
  const int k = 32 / bits;
  const unsigned int mask = bits == 8 ? 0xffu : 0xffffu;
  const long long n = (count + k - 1) / k;
  ${GRID_STRIDE} {
    unsigned int word = 0u;
    for (int j = 0; j < k && i * k + j < count; ++j) word |= ((unsigned int)values[i * k + j] & mask) << (bits * j);
    out[i] = (int)word;
  }
}
`;

/** Unpacks the first n values (0 … 2^bits − 1). */
export const unpackSource = (name: string): string => `
extern "C" __global__ void ${name}(int* __restrict__ out, const int* __restrict__ packed, long long n, int bits) {
  const int k = 32 / bits;
  const unsigned int mask = bits == 8 ? 0xffu : 0xffffu;
  ${GRID_STRIDE} out[i] = (int)(((unsigned int)packed[i / k] >> (bits * (i % k))) & mask);
}
`;

/**
 * The 8-bit Adam step's constants, float64 as @kstar/optim-adam8bit computes them (@kstar/kernels'
 * `adamStepConstants`, whose names the kernel reads from its attributes; passed by value in this order): AdamW's.
 */
export const ADAM8_CONSTS = ADAMW_CONSTS;

/**
 * New float32 states of element i from its OLD codes (the cpu kernel's float64 expressions, rounded to float32); a
 * non-finite gradient gives 0 states (and leaves p alone).
 */
const ADAM8 = `${QUANT}
struct Adam8Consts { double ${ADAM8_CONSTS.join(', ')}; };
__device__ __forceinline__ bool isFiniteF(float g) { return (__float_as_uint(g) & 0x7f800000u) != 0x7f800000u; }
__device__ __forceinline__ float newM(const int* c1, long long i, float am, float g, const Adam8Consts& k) {
  if (!isFiniteF(g)) return 0.f;
  return (float)__dadd_rn(__dmul_rn(k.beta1, (double)dequantValue(CODE_S, byteAt(c1, i), am)), __dmul_rn(k.oneMinusBeta1, (double)g));
}
__device__ __forceinline__ float newV(const int* c2, long long i, float av, float g, const Adam8Consts& k) {
  if (!isFiniteF(g)) return 0.f;
  return (float)__dadd_rn(__dmul_rn(k.beta2, (double)dequantValue(CODE_U, byteAt(c2, i), av)),
      __dmul_rn(__dmul_rn(k.oneMinusBeta2, (double)g), (double)g));
}
`;

/** Adam8bit pass 1, one CUDA block per quantization block: the new absmax of m (newAbs[b]) and v (newAbs[nBlocks + b]). */
export const adam8bitAbsmaxSource = (name: string): string => `${ADAM8}${BLOCK_NAN_MAX}
extern "C" __global__ void ${name}(float* __restrict__ newAbs, const float* __restrict__ g, const int* __restrict__ c1,
    const float* __restrict__ a1, const int* __restrict__ c2, const float* __restrict__ a2, long long n, long long blockSize,
    long long nBlocks, Adam8Consts k) {
  const long long b = blockIdx.x, start = b * blockSize;
  const long long end = start + blockSize < n ? start + blockSize : n;
  float mm = 0.f, mv = 0.f;
  for (long long i = start + threadIdx.x; i < end; i += blockDim.x) {
    mm = nanMax(mm, fabsf(newM(c1, i, a1[b], g[i], k)));
    mv = nanMax(mv, fabsf(newV(c2, i, a2[b], g[i], k)));
  }
  mm = blockNanMax(mm);
  mv = blockNanMax(mv);
  if (threadIdx.x == 0) { newAbs[b] = mm; newAbs[nBlocks + b] = mv; }
}
`;

/**
 * Adam8bit pass 2, one thread a code word (four elements; a word may straddle two quantization blocks): p updated
 * with the float32 states (float64 math, decay before the step), then both codes requantized against the new absmax.
 * The thread reads its word's old codes before writing them, so the update is in place.
 */
export const adam8bitUpdateSource = (name: string): string => `${ADAM8}
extern "C" __global__ void ${name}(float* __restrict__ p, const float* __restrict__ g, int* __restrict__ c1,
    const float* __restrict__ a1, int* __restrict__ c2, const float* __restrict__ a2, const float* __restrict__ newAbs,
    long long count, long long blockSize, long long nBlocks, Adam8Consts k) {
  const long long n = (count + 3) / 4;
  ${GRID_STRIDE} {
    unsigned int w1 = 0u, w2 = 0u;
    for (int j = 0; j < 4; ++j) {
      const long long e = 4 * i + j;
      if (e >= count) break;
      const long long b = e / blockSize;
      const float ge = g[e];
      const float m = newM(c1, e, a1[b], ge, k), v = newV(c2, e, a2[b], ge, k);
      if (isFiniteF(ge)) {
        const double denom = __dadd_rn(__ddiv_rn(__dsqrt_rn((double)v), k.sqrtBc2), k.eps);
        p[e] = (float)__dsub_rn(__dmul_rn((double)p[e], k.decay), __dmul_rn(k.stepSize, __ddiv_rn((double)m, denom)));
      }
      w1 |= (unsigned int)quantValue(CODE_S, m, newAbs[b], 127, 1) << (8 * j);
      w2 |= (unsigned int)quantValue(CODE_U, v, newAbs[nBlocks + b], 0, 0) << (8 * j);
    }
    c1[i] = (int)w1;
    c2[i] = (int)w2;
  }
}
`;

/**
 * Adagrad in place, float64 math and float32 storage like the cpu kernel: acc ← acc + g²; p ← p − lr·g/(√acc + eps)
 * (or /√(acc + eps)). Dense (nRows < 0: element i of everything) or row-lazy: element i is column i mod d of
 * selected row r = i / d, at p/g row rows[r] and acc row slots[r].
 */
export const adagradSource = (name: string): string => `
struct AdagradConsts { double lr, eps; };
extern "C" __global__ void ${name}(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ acc,
    const int* __restrict__ rows, const int* __restrict__ slots, long long nRows, long long d, long long n,
    AdagradConsts k, int epsInside) {
  const double lr = k.lr, eps = k.eps;
  ${GRID_STRIDE} {
    long long pi = i, ai = i;
    if (nRows >= 0) {
      const long long r = i / d, j = i - r * d;
      pi = (long long)rows[r] * d + j;
      ai = (long long)slots[r] * d + j;
    }
    const double gi = (double)g[pi];
    const float a = (float)__dadd_rn((double)acc[ai], __dmul_rn(gi, gi));
    acc[ai] = a;
    const double denom = epsInside ? __dsqrt_rn(__dadd_rn((double)a, eps)) : __dadd_rn(__dsqrt_rn((double)a), eps);
    p[pi] = (float)__dsub_rn((double)p[pi], __ddiv_rn(__dmul_rn(lr, gi), denom));
  }
}
`;

/** Every source of these kernels, by kernel name: what the nvcc test compiles. */
export function kstarOptimSources(): Record<string, string> {
  const all: Record<string, (name: string) => string> = {
    kstar_quant_absmax: quantAbsmaxSource,
    kstar_quant_codes: quantCodesSource,
    kstar_dequant: dequantSource,
    kstar_pack: packSource,
    kstar_unpack: unpackSource,
    kstar_adam8bit_absmax: adam8bitAbsmaxSource,
    kstar_adam8bit_update: adam8bitUpdateSource,
    kstar_adagrad: adagradSource,
  };
  return Object.fromEntries(Object.entries(all).map(([name, make]) => [name, make(name)]));
}
