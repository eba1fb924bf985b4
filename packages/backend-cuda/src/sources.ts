/**
 * CUDA C sources of the backend's kernels, generated from a few templates. Each source holds one `extern "C"`
 * kernel; the device compiles it with NVRTC on first use and caches the module by source text. Everything here is
 * plain string work (no GPU), so CI checks it and compiles it with nvcc where nvcc exists.
 *
 * Storage types: float32 → `float`, int32 and bool → `int` (bool as 0/1 in 4 bytes, so every kernel moves 4-byte
 * elements). Shapes travel in by-value structs of at most MAX_RANK dimensions.
 */

export type CType = 'float' | 'int';

/** The most dimensions a kernel indexes; tensors of higher rank are refused with the kernel's name. */
export const MAX_RANK = 6;

/** Device helpers every source starts with: overloads so that one expression serves float and int. */
const PRELUDE = `#define MAXR ${MAX_RANK}
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
__device__ __forceinline__ float kmax(float a, float b) { return (a != a || b != b) ? __int_as_float(0x7fc00000) : fmaxf(a, b); }
__device__ __forceinline__ int kmax(int a, int b) { return a > b ? a : b; }
__device__ __forceinline__ float kmin(float a, float b) { return (a != a || b != b) ? __int_as_float(0x7fc00000) : fminf(a, b); }
__device__ __forceinline__ int kmin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ float kabs(float a) { return fabsf(a); }
__device__ __forceinline__ int kabs(int a) { return a < 0 ? -a : a; }
__device__ __forceinline__ float ksign(float a) { return a != a ? a : (a > 0.f ? 1.f : (a < 0.f ? -1.f : 0.f)); }
__device__ __forceinline__ int ksign(int a) { return a > 0 ? 1 : (a < 0 ? -1 : 0); }
__device__ __forceinline__ float kfloordiv(float a, float b) { return floorf(a / b); }
__device__ __forceinline__ int kfloordiv(int a, int b) { return (int)floorf((float)a / (float)b); }
__device__ __forceinline__ float kmod(float a, float b) { float r = fmodf(a, b); return (r != 0.f && ((r < 0.f) != (b < 0.f))) ? r + b : r; }
__device__ __forceinline__ int kmod(int a, int b) { int r = a % b; return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r; }
__device__ __forceinline__ float kpow(float a, float b) { return powf(a, b); }
__device__ __forceinline__ int kpow(int a, int b) { return (int)rintf(powf((float)a, (float)b)); }
__device__ __forceinline__ float knan() { return __int_as_float(0x7fc00000); }
`;

/**
 * Element-wise kernel over up to three inputs with broadcasting. Each input's mode (2 bits of `modes`) says how
 * it is indexed: 0 like the output, 1 a scalar, 2 through the strides in `m` (0 where the input broadcasts).
 * `expr` reads the inputs as `a`, `b`, `c` and the float parameters as `p0`, `p1`.
 */
export function elementwiseSource(
  name: string,
  inTypes: readonly CType[],
  outType: CType,
  expr: string,
): string {
  if (inTypes.length < 1 || inTypes.length > 3) throw new Error(`elementwise kernel ${name}: 1 to 3 inputs`);
  const n = inTypes.length;
  const letters = ['a', 'b', 'c'];
  const params = inTypes.map((t, i) => `const ${t}* __restrict__ in${i}`).join(', ');
  const decl = inTypes.map((_, i) => `long long o${i} = i;`).join(' ');
  const modes = inTypes
    .map((_, i) => `int m${i} = (modes >> ${2 * i}) & 3; if (m${i} == 1) o${i} = 0;`)
    .join('\n    ');
  const strided = inTypes.map((_, i) => `long long s${i} = 0;`).join(' ');
  const accum = inTypes.map((_, i) => `s${i} += c * m.strides[${i}][d];`).join(' ');
  const accum32 = inTypes.map((_, i) => `s${i} += (long long)c * m.strides[${i}][d];`).join(' ');
  const assign = inTypes.map((_, i) => `if (m${i} == 2) o${i} = s${i};`).join(' ');
  const loads = inTypes.map((t, i) => `${t} ${letters[i]} = in${i}[o${i}];`).join(' ');
  return `${PRELUDE}
struct EwMeta { int rank; int shape[MAXR]; int strides[3][MAXR]; };
extern "C" __global__ void ${name}(${outType}* __restrict__ out, ${params}, long long n, EwMeta m, int modes, float p0, float p1) {
  long long step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    ${decl}
    ${modes}
    if (modes & ${0b101010 & ((1 << (2 * n)) - 1)}) {
      ${strided}
      // 64-bit division is emulated (tens of instructions); below 2^32 elements 32-bit unsigned division serves.
      if (n <= 0xffffffffLL) {
        unsigned int r = (unsigned int)i;
        for (int d = m.rank - 1; d >= 0; --d) { unsigned int sd = (unsigned int)m.shape[d]; unsigned int c = r % sd; r /= sd; ${accum32} }
      } else {
        long long r = i;
        for (int d = m.rank - 1; d >= 0; --d) { long long c = r % m.shape[d]; r /= m.shape[d]; ${accum} }
      }
      ${assign}
    }
    ${loads}
    out[i] = (${outType})(${expr});
  }
}
`;
}

export type ReduceOp = 'sum' | 'prod' | 'max' | 'min' | 'all' | 'any';

const REDUCE_INIT: Record<ReduceOp, (t: CType) => string> = {
  sum: (t) => (t === 'float' ? '0.f' : '0'),
  prod: (t) => (t === 'float' ? '1.f' : '1'),
  max: (t) => (t === 'float' ? '-INFINITY' : '(-2147483647 - 1)'),
  min: (t) => (t === 'float' ? 'INFINITY' : '2147483647'),
  all: () => '1',
  any: () => '0',
};

const REDUCE_COMBINE: Record<ReduceOp, string> = {
  sum: 'x + y',
  prod: 'x * y',
  max: 'kmax(x, y)',
  min: 'kmin(x, y)',
  all: '(x && y) ? 1 : 0',
  any: '(x || y) ? 1 : 0',
};

/**
 * Row reduction: the input is [rows, cols] (reduced axes moved innermost by the caller); one block of 256 threads a
 * row; the result is multiplied by `scale` (1/cols for Mean).
 */
export function reduceSource(name: string, op: ReduceOp, t: CType): string {
  return `${PRELUDE}
__device__ __forceinline__ ${t} combine(${t} x, ${t} y) { return ${REDUCE_COMBINE[op]}; }
extern "C" __global__ void ${name}(${t}* __restrict__ out, const ${t}* __restrict__ in, long long cols, float scale) {
  const ${t}* p = in + (long long)blockIdx.x * cols;
  ${t} acc = ${REDUCE_INIT[op](t)};
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) acc = combine(acc, p[j]);
  __shared__ ${t} sh[256];
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = combine(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = scale == 1.f ? sh[0] : (${t})(sh[0] * scale);
}
`;
}

/**
 * Column reduction of x viewed as [rows, cols] (the reduced axes are the leading ones: a bias gradient's Sum over
 * axis 0), no transpose: thread i reduces column i mod cols over rows [chunk·chunkRows, (chunk+1)·chunkRows) of
 * chunk i / cols into out[i] (times `scale`). One pass with chunkRows = rows, or two: partials [C, cols], then C rows.
 */
export function columnReduceSource(name: string, op: ReduceOp, t: CType): string {
  return `${PRELUDE}
__device__ __forceinline__ ${t} combine(${t} x, ${t} y) { return ${REDUCE_COMBINE[op]}; }
extern "C" __global__ void ${name}(${t}* __restrict__ out, const ${t}* __restrict__ in, long long rows, long long cols, long long chunkRows, float scale) {
  long long n = ((rows + chunkRows - 1) / chunkRows) * cols, step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    long long chunk = i / cols, c = i - chunk * cols;
    long long r0 = chunk * chunkRows, r1 = r0 + chunkRows < rows ? r0 + chunkRows : rows;
    ${t} acc = ${REDUCE_INIT[op](t)};
    for (long long r = r0; r < r1; ++r) acc = combine(acc, in[r * cols + c]);
    out[i] = scale == 1.f ? acc : (${t})(acc * scale);
  }
}
`;
}

/** Index of the largest (`max`) or smallest (`min`) value of each row; ties go to the first index, like tfjs. */
export function argReduceSource(name: string, op: 'max' | 'min', t: CType): string {
  const cmp = op === 'max' ? '>' : '<';
  return `${PRELUDE}
extern "C" __global__ void ${name}(int* __restrict__ out, const ${t}* __restrict__ in, long long cols) {
  const ${t}* p = in + (long long)blockIdx.x * cols;
  ${t} bv = 0; long long bi = -1;
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) { ${t} v = p[j]; if (bi < 0 || v ${cmp} bv) { bv = v; bi = j; } }
  __shared__ ${t} sv[256]; __shared__ long long si[256];
  sv[threadIdx.x] = bv; si[threadIdx.x] = bi;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      ${t} v = sv[threadIdx.x + s], w = sv[threadIdx.x]; long long j = si[threadIdx.x + s], k = si[threadIdx.x];
      if (j >= 0 && (k < 0 || v ${cmp} w || (v == w && j < k))) { sv[threadIdx.x] = v; si[threadIdx.x] = j; }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = (int)si[0];
}
`;
}

/** Softmax of each row of [rows, cols]: max, sum of exponentials, then the quotients; one block a row. */
export function softmaxSource(name: string): string {
  return `${PRELUDE}
__device__ float blockReduce(float v, float* sh, bool isMax) {
  sh[threadIdx.x] = v; __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = isMax ? fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]) : sh[threadIdx.x] + sh[threadIdx.x + s];
    __syncthreads();
  }
  float r = sh[0]; __syncthreads(); return r;
}
extern "C" __global__ void ${name}(float* __restrict__ out, const float* __restrict__ in, long long cols) {
  const float* p = in + (long long)blockIdx.x * cols; float* q = out + (long long)blockIdx.x * cols;
  __shared__ float sh[256];
  float mx = -INFINITY;
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, p[j]);
  mx = blockReduce(mx, sh, true);
  float sum = 0.f;
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) sum += expf(p[j] - mx);
  sum = blockReduce(sum, sh, false);
  float inv = 1.f / sum;
  for (long long j = threadIdx.x; j < cols; j += blockDim.x) q[j] = expf(p[j] - mx) * inv;
}
`;
}

/**
 * Strided read: out[i] = in[offset + Σ c_d·strides_d] over the output's coordinates c (c_d taken modulo mods_d
 * where mods_d > 0). Transpose, slice, strided slice, reverse (negative strides), broadcastTo and tile are this.
 */
export function stridedCopySource(name: string, t: CType | 'int4'): string {
  return `${PRELUDE}
struct CopyMeta { int rank; int shape[MAXR]; int mods[MAXR]; long long strides[MAXR]; };
extern "C" __global__ void ${name}(${t}* __restrict__ out, const ${t}* __restrict__ in, long long n, long long offset, CopyMeta m) {
  long long step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    long long o = offset;
    // 64-bit division is emulated (tens of instructions); below 2^32 elements 32-bit unsigned division serves.
    if (n <= 0xffffffffLL) {
      unsigned int r = (unsigned int)i;
      for (int d = m.rank - 1; d >= 0; --d) {
        unsigned int sd = (unsigned int)m.shape[d], c = r % sd; r /= sd;
        if (m.mods[d] > 0) c %= (unsigned int)m.mods[d];
        o += (long long)c * m.strides[d];
      }
    } else {
      long long r = i;
      for (int d = m.rank - 1; d >= 0; --d) {
        long long c = r % m.shape[d]; r /= m.shape[d];
        if (m.mods[d] > 0) c %= m.mods[d];
        o += c * m.strides[d];
      }
    }
    out[i] = in[o];
  }
}
`;
}

/** Constant padding: out coordinate c reads in[c - before] where that lies inside the input, else `value`. */
export function padSource(name: string, t: CType): string {
  return `${PRELUDE}
struct PadMeta { int rank; int outShape[MAXR]; int inShape[MAXR]; int before[MAXR]; };
extern "C" __global__ void ${name}(${t}* __restrict__ out, const ${t}* __restrict__ in, long long n, PadMeta m, float value) {
  long long step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    long long r = i, o = 0, stride = 1; bool inside = true;
    unsigned int r32 = (unsigned int)i; const bool small = n <= 0xffffffffLL;
    for (int d = m.rank - 1; d >= 0; --d) {
      long long c;
      // 64-bit division is emulated; below 2^32 elements 32-bit unsigned division serves.
      if (small) { unsigned int sd = (unsigned int)m.outShape[d]; c = (long long)(r32 % sd) - m.before[d]; r32 /= sd; }
      else { c = r % m.outShape[d] - m.before[d]; r /= m.outShape[d]; }
      if (c < 0 || c >= m.inShape[d]) inside = false;
      o += c * stride; stride *= m.inShape[d];
    }
    out[i] = inside ? in[o] : (${t})value;
  }
}
`;
}

/** Copies [rows, cols] into columns [colOffset, colOffset + cols) of [rows, outCols]: one input of a concat. */
export function copyColumnsSource(name: string, t: CType): string {
  return `extern "C" __global__ void ${name}(${t}* __restrict__ out, const ${t}* __restrict__ in, long long rows, long long cols, long long outCols, long long colOffset) {
  long long n = rows * cols, step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    // 64-bit division is emulated; below 2^32 elements 32-bit unsigned division serves.
    long long r = n <= 0xffffffffLL ? (long long)((unsigned int)i / (unsigned int)cols) : i / cols, c = i - r * cols;
    out[r * outCols + colOffset + c] = in[i];
  }
}
`;
}

/** Gather along the middle axis: x [outer, axisSize, inner], indices [count] → [outer, count, inner]; an index out of range gives 0. */
export function gatherSource(name: string, t: CType): string {
  return `extern "C" __global__ void ${name}(${t}* __restrict__ out, const ${t}* __restrict__ x, const int* __restrict__ idx, long long outer, long long axisSize, long long count, long long inner) {
  long long n = outer * count * inner, step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    long long k = i % inner, r = i / inner, j = r % count, o = r / count;
    int g = idx[j];
    out[i] = (g >= 0 && g < axisSize) ? x[(o * axisSize + g) * inner + k] : (${t})0;
  }
}
`;
}

/** Unsorted segment sum: out [segments, inner] (zeroed by the caller) += x [rows, inner] by ids [rows]; ids out of range are dropped. */
export function segmentSumSource(name: string, t: CType): string {
  return `extern "C" __global__ void ${name}(${t}* __restrict__ out, const ${t}* __restrict__ x, const int* __restrict__ ids, long long rows, long long inner, long long segments) {
  long long n = rows * inner, step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    long long r = i / inner, k = i - r * inner;
    int s = ids[r];
    if (s >= 0 && s < segments) atomicAdd(out + (long long)s * inner + k, x[i]);
  }
}
`;
}

/** One-hot: out [count, depth] = on where the index equals the column, else off. */
export function oneHotSource(name: string, t: CType): string {
  return `extern "C" __global__ void ${name}(${t}* __restrict__ out, const int* __restrict__ idx, long long count, long long depth, float on, float off) {
  long long n = count * depth, step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    long long r = i / depth, d = i - r * depth;
    out[i] = (${t})(idx[r] == d ? on : off);
  }
}
`;
}

/**
 * Scatter update: out (a copy of the tensor, made by the caller) gets updates [count, slice] at the slices that
 * indices [count, depth] name (row-major over the tensor's first `depth` dimensions with `strides`).
 */
export function scatterUpdateSource(name: string, t: CType): string {
  return `${PRELUDE}
struct ScatterMeta { int depth; long long strides[MAXR]; long long dims[MAXR]; };
extern "C" __global__ void ${name}(${t}* __restrict__ out, const int* __restrict__ idx, const ${t}* __restrict__ updates, long long count, long long slice, ScatterMeta m) {
  long long n = count * slice, step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    long long r = i / slice, k = i - r * slice, o = 0; bool ok = true;
    for (int d = 0; d < m.depth; ++d) { int v = idx[r * m.depth + d]; if (v < 0 || v >= m.dims[d]) ok = false; o += v * m.strides[d]; }
    if (ok) out[o + k] = updates[i];
  }
}
`;
}

/** Every source of the fixed (non-element-wise) kernels, by name: what the nvcc test compiles. */
export function fixedSources(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of ['float', 'int'] as const) {
    for (const op of Object.keys(REDUCE_INIT) as ReduceOp[]) {
      out[`reduce_${op}_${t}`] = reduceSource(`reduce_${op}_${t}`, op, t);
      out[`colreduce_${op}_${t}`] = columnReduceSource(`colreduce_${op}_${t}`, op, t);
    }
    for (const op of ['max', 'min'] as const) out[`arg${op}_${t}`] = argReduceSource(`arg${op}_${t}`, op, t);
    out[`strided_copy_${t}`] = stridedCopySource(`strided_copy_${t}`, t);
    out[`pad_${t}`] = padSource(`pad_${t}`, t);
    out[`copy_columns_${t}`] = copyColumnsSource(`copy_columns_${t}`, t);
    out[`gather_${t}`] = gatherSource(`gather_${t}`, t);
    out[`segment_sum_${t}`] = segmentSumSource(`segment_sum_${t}`, t);
    out[`one_hot_${t}`] = oneHotSource(`one_hot_${t}`, t);
    out[`scatter_update_${t}`] = scatterUpdateSource(`scatter_update_${t}`, t);
  }
  out.softmax_float = softmaxSource('softmax_float');
  out.strided_copy_int4 = stridedCopySource('strided_copy_int4', 'int4');
  return out;
}
