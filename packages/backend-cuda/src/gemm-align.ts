/**
 * Leading dimensions for tensor-core GEMMs. cuBLAS's Hopper tensor-core kernels need every matrix's rows to start on
 * 16 bytes: a leading dimension that is a multiple of 4 float32 (TF32) or 8 bf16 elements. A GPT's LM head has
 * vocabulary 50,257 as a leading dimension (logits [B·T, V], their gradient), so cuBLAS falls back to kernels that
 * reach half the speed of the other products (118–129 against 260–296 TFLOP/s on an H200). Operands are copied with
 * padded rows (for bf16 the conversion writes them padded at no extra cost): the LM head's weight gradient in bf16
 * went from 4.93 to 3.33 ms. Pure arithmetic and CUDA source text here (tested without a GPU); matmul.ts runs it.
 */

/** The element multiple a leading dimension needs: 16 bytes of the GEMM's input type (1: no tensor cores). */
export function ldMultiple(precision: 'strict' | 'tf32' | 'bf16'): number {
  return precision === 'bf16' ? 8 : precision === 'tf32' ? 4 : 1;
}

export const roundUp = (x: number, multiple: number): number => Math.ceil(x / multiple) * multiple;

/**
 * Below this many multiply-adds (batch·M·N·K) a product is too small for a padding copy to pay back (≈ 10 µs of
 * GEMM at TF32 speed); the LM head's products are 3 · 10^11.
 */
export const PAD_MIN_MACS = 2 ** 30;

/**
 * The padded leading dimensions of one GEMM: `first`, `second` (the operands' row lengths) and `out` (N, kept). bf16
 * operands are always written padded (they are converted anyway); float32 operands only when the product is large
 * enough (`macs` ≥ PAD_MIN_MACS). Unchanged where already aligned, and everything under strict.
 */
export function alignedLds(
  precision: 'strict' | 'tf32' | 'bf16',
  lds: { first: number; second: number; out: number },
  macs: number,
): { first: number; second: number; out: number } {
  const m = ldMultiple(precision);
  const big = macs >= PAD_MIN_MACS;
  const operand = (ld: number) => (precision === 'bf16' || big ? roundUp(ld, m) : ld);
  // The output is left as it is: written into padded rows and copied out, the LM head's logits took longer on the
  // H200 (tf32 6.85 ms against 4.89, bf16 8.70 against 6.74: bench/results/2026-12-03-s3-cuda-kernels-run2.json).
  return { first: operand(lds.first), second: operand(lds.second), out: lds.out };
}

/**
 * out[r·ldOut + c] = in[r·ldIn + c] for r < rows, c < cols: a float32 matrix into padded rows (or back), or rounded to
 * bfloat16 (round to nearest even, NaN kept) with `toBf16`. Grid: x over columns, y over rows (grid-stride in both).
 */
export function pitchedCopySource(name: string, toBf16: boolean): string {
  const outType = toBf16 ? 'unsigned short' : 'float';
  const value = toBf16
    ? `unsigned int u = __float_as_uint(src[c]);
      dst[c] = (unsigned short)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16);`
    : 'dst[c] = src[c];';
  return `extern "C" __global__ void ${name}(${outType}* __restrict__ out, const float* __restrict__ in, long long rows, long long cols, long long ldOut, long long ldIn) {
  for (long long r = blockIdx.y; r < rows; r += gridDim.y) {
    const float* src = in + r * ldIn; ${outType}* dst = out + r * ldOut;
    for (long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long long)gridDim.x * blockDim.x) {
      ${value}
    }
  }
}
`;
}

/** Blocks of a pitched copy: x covers a row's columns (256 threads a block), y the rows (the driver's limit 65,535). */
export function pitchedGrid(rows: number, cols: number): { x: number; y: number } {
  return { x: Math.max(1, Math.min(1024, Math.ceil(cols / 256))), y: Math.max(1, Math.min(65535, rows)) };
}

/**
 * Whether a tensor-core product should be computed transposed: Cᵀ [N, M] = op(B)ᵀ·op(A)ᵀ, then transposed into C
 * [M, N]. cuBLAS runs a product whose output rows are misaligned (N not a multiple of `ldMultiple`: the LM head's
 * logits [B·T, 50,257]) at half speed, and padding its output rows was slower still (see `alignedLds`); the transposed
 * product's rows are M long. One unbatched product without a bias, large enough (`PAD_MIN_MACS`) for a tiled
 * transpose of the output to pay, with M aligned (else the transposed product has the same problem).
 */
export function transposedOutputPays(
  precision: 'strict' | 'tf32' | 'bf16',
  shape: { M: number; N: number; K: number; batch: number },
  hasBias: boolean,
): boolean {
  const m = ldMultiple(precision);
  const { M, N, K, batch } = shape;
  return (
    m > 1 &&
    batch === 1 &&
    !hasBias &&
    N % m !== 0 &&
    M % m === 0 &&
    M * N * K >= PAD_MIN_MACS &&
    Math.ceil(N / TRANSPOSE_TILE) <= 65_535
  );
}

/** Side of the shared-memory tile of `transposeTileSource`. */
export const TRANSPOSE_TILE = 32;

/**
 * out [cols, rows] = inᵀ for in [rows, cols] float32: 32 × 32 tiles through shared memory (a padded row of 33 avoids
 * bank conflicts), so both the reads and the writes are coalesced. 256 threads a block (32 × 8, each 4 rows); grid x
 * over column tiles, y over row tiles (`transposeTileGrid`), z over a batch of such matrices stored back to back.
 */
export function transposeTileSource(name: string): string {
  return `extern "C" __global__ void ${name}(float* __restrict__ out, const float* __restrict__ in, long long rows, long long cols) {
  __shared__ float tile[32][33];
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
  const long long r0 = (long long)blockIdx.y * 32, c0 = (long long)blockIdx.x * 32;
  in += (long long)blockIdx.z * rows * cols; out += (long long)blockIdx.z * rows * cols;
  for (int j = ty; j < 32; j += 8) {
    const long long r = r0 + j, c = c0 + tx;
    if (r < rows && c < cols) tile[j][tx] = in[r * cols + c];
  }
  __syncthreads();
  for (int j = ty; j < 32; j += 8) {
    const long long c = c0 + j, r = r0 + tx;
    if (r < rows && c < cols) out[c * rows + r] = tile[tx][j];
  }
}
`;
}

/** Threads a block of `transposeTileSource`. */
export const TRANSPOSE_BLOCK = 256;

/** Blocks of a tiled transpose of [rows, cols]: x over column tiles, y over row tiles. */
export function transposeTileGrid(rows: number, cols: number): { x: number; y: number } {
  return { x: Math.ceil(cols / TRANSPOSE_TILE), y: Math.ceil(rows / TRANSPOSE_TILE) };
}

/**
 * Whether a TF32 product with only A transposed (row-major Aᵀ·B: a weight gradient Xᵀ·dY, the LM head's dZᵀ·H) should
 * first copy A transposed, so cuBLAS runs the plain A·B. In cuBLAS's column-major terms Aᵀ·B leaves neither operand
 * contiguous along K, and Hopper's TF32 tensor-core kernels need that of at least one: on the H200 dW_fc ran at 120
 * TFLOP/s against 262 with Xᵀ stored, dWte at 125 (bench/results/2026-12-03-s4-cuda-kernels.json). The transpose reads
 * and writes M·K float32 (≈ 8 bytes an element at ~2.5 TB/s) to save about half of 2·M·N·K flops at ~125 TFLOP/s: it
 * pays where N > ~400 (not attention's dV = Pᵀ·dO, N = head size 64), on products of PAD_MIN_MACS or more, with K
 * aligned (the copy's rows are K long). bf16 products read transposed operands at full speed (263 TFLOP/s).
 */
export function transposedFirstOperandPays(
  precision: 'strict' | 'tf32' | 'bf16',
  shape: { M: number; N: number; K: number; batch: number },
  transposeA: boolean,
  transposeB: boolean,
): boolean {
  const { M, N, K, batch } = shape;
  return (
    precision === 'tf32' &&
    transposeA &&
    !transposeB &&
    N >= 512 &&
    K % ldMultiple(precision) === 0 &&
    batch * M * N * K >= PAD_MIN_MACS &&
    Math.ceil(K / TRANSPOSE_TILE) <= 65_535 &&
    batch <= 65_535
  );
}

/**
 * Where `transposedFirstOperandPays` holds, whether to compute Cᵀ = (Bᵀ copied)·A and transpose Cᵀ instead of copying
 * Aᵀ: it moves N·K + M·N elements instead of M·K, fewer when A is the wide one (dW_proj = hᵀ·dy, M = 3072, N = 768:
 * 8.7 M against 25 M elements). Cᵀ's rows are M long: M must be aligned (the LM head's dWte, M = 50,257, is not).
 */
export function transposedProductPays(
  precision: 'strict' | 'tf32' | 'bf16',
  shape: { M: number; N: number; K: number },
): boolean {
  const { M, N, K } = shape;
  return M % ldMultiple(precision) === 0 && N * K + M * N < M * K;
}
