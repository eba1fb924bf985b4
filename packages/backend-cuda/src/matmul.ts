import * as tf from '@tensorflow/tfjs-core';
import type { CudaBackend } from './backend.ts';
import {
  alignedLds,
  pitchedCopySource,
  pitchedGrid,
  TRANSPOSE_BLOCK,
  transposedFirstOperandPays,
  transposedOutputPays,
  transposedProductPays,
  transposeTileGrid,
  transposeTileSource,
} from './gemm-align.ts';
import { launchFixed, stridedCopy } from './launch.ts';
import type { GemmHead } from './native.ts';
import { cachedOperand } from './operand-cache.ts';
import { i64, ptr } from './params.ts';
import { broadcastStrides, sizeOf } from './shape.ts';

const OP_N = 0;
const OP_T = 1;
const CUDA_R_32F = 0;
const CUDA_R_16BF = 14;
const CUBLAS_COMPUTE_32F = 68;
const CUBLAS_COMPUTE_32F_FAST_TF32 = 77;
const CUBLAS_GEMM_DEFAULT = -1;
const ONE = new Float32Array([1]);
const ZERO = new Float32Array([0]);

/**
 * How matmuls run: `strict` (float32 FMA, the default), `tf32` (tensor cores on float32 storage) or `bf16` (inputs
 * rounded to bfloat16 on the fly, float32 accumulation and output: `--precision bf16-mixed`). Set by
 * `setMatmulPrecision` (the trainer's flags), else KSTAR_CUDA_MATMUL.
 */
export type CudaMatmulPrecision = 'strict' | 'tf32' | 'bf16';
const PRECISIONS: readonly CudaMatmulPrecision[] = ['strict', 'tf32', 'bf16'];
let chosen: CudaMatmulPrecision | null = null;

export function setMatmulPrecision(p: CudaMatmulPrecision | null): void {
  if (p !== null && !PRECISIONS.includes(p))
    throw new Error(`cuda matmul precision ${JSON.stringify(p)}: use ${PRECISIONS.join(', ')}`);
  chosen = p;
}

export function matmulPrecision(): CudaMatmulPrecision {
  if (chosen) return chosen;
  const v = (process.env.KSTAR_CUDA_MATMUL ?? 'strict') as CudaMatmulPrecision;
  if (!PRECISIONS.includes(v))
    throw new Error(`KSTAR_CUDA_MATMUL=${JSON.stringify(v)}: use 'strict' (float32), 'tf32' or 'bf16'`);
  return v;
}

/**
 * The GEMM cuBLAS runs for row-major C[M, N] = op(A)·op(B): cuBLAS is column-major, so it computes Cᵀ = op(B)ᵀ·op(A)ᵀ
 * with B's and A's memory swapped (a row-major matrix is its transpose column-major). Pure arithmetic, tested
 * without a GPU.
 */
export function gemmPlan(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): {
  m: number;
  n: number;
  k: number;
  opFirst: number;
  opSecond: number;
  ldFirst: number;
  ldSecond: number;
  ldc: number;
  M: number;
  N: number;
  K: number;
  batchShape: number[];
} {
  const ra = aShape.length;
  const rb = bShape.length;
  const M = transposeA ? aShape[ra - 1]! : aShape[ra - 2]!;
  const K = transposeA ? aShape[ra - 2]! : aShape[ra - 1]!;
  const K2 = transposeB ? bShape[rb - 1]! : bShape[rb - 2]!;
  const N = transposeB ? bShape[rb - 2]! : bShape[rb - 1]!;
  if (K !== K2)
    throw new Error(
      `BatchMatMul: inner dimensions differ ([${aShape}]${transposeA ? 'ᵀ' : ''} · [${bShape}]${transposeB ? 'ᵀ' : ''}: ${K} vs ${K2})`,
    );
  const batchShape = tf.backend_util.assertAndGetBroadcastShape(aShape.slice(0, -2), bShape.slice(0, -2));
  return {
    m: N,
    n: M,
    k: K,
    // first operand = B's memory, second = A's memory
    opFirst: transposeB ? OP_T : OP_N,
    opSecond: transposeA ? OP_T : OP_N,
    ldFirst: transposeB ? K : N,
    ldSecond: transposeA ? M : K,
    ldc: N,
    M,
    N,
    K,
    batchShape,
  };
}

/** Expands x's batch dimensions to `batchShape` (only where a batch broadcasts partially, e.g. [2,1] with [1,3]). */
function expandBatch(b: CudaBackend, x: tf.TensorInfo, batchShape: number[]): tf.TensorInfo {
  const shape = [...batchShape, ...x.shape.slice(-2)];
  return stridedCopy(b, x, shape, broadcastStrides(x.shape, shape));
}

/** float32 → bfloat16 (round to nearest even; NaN stays NaN), as 16-bit words. */
export const toBf16Source = (name: string): string => `
extern "C" __global__ void ${name}(unsigned short* __restrict__ out, const float* __restrict__ in, long long n) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    unsigned int u = __float_as_uint(in[i]);
    out[i] = (unsigned short)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
}
`;

/** A bfloat16 copy of x's elements in a scratch buffer (freed by the caller with `device.free`). */
function bf16Copy(b: CudaBackend, x: tf.TensorInfo): number {
  const n = sizeOf(x.shape);
  const dst = b.device.alloc(2 * n);
  launchFixed(b, 'to_bf16', toBf16Source('to_bf16'), n, [ptr(dst), ptr(b.pointer(x.dataId)), i64(n)]);
  return dst;
}

/** dst rows (leading dimension ldOut) ← src rows (ldIn), `cols` float32 elements each, or rounded to bf16. */
function pitchedCopy(
  b: CudaBackend,
  toBf16: boolean,
  dst: number,
  src: number,
  rows: number,
  cols: number,
  ldOut: number,
  ldIn: number,
): void {
  const d = b.device;
  const name = toBf16 ? 'pitched_to_bf16' : 'pitched_copy';
  const grid = pitchedGrid(rows, cols);
  d.launch(
    d.kernel(name, pitchedCopySource(name, toBf16)),
    grid.x,
    256,
    [ptr(dst), ptr(src), i64(rows), i64(cols), i64(ldOut), i64(ldIn)],
    name,
    grid.y,
  );
}

/**
 * An operand as the GEMM reads it, rows of `ld` elements: x itself, or a copy in bfloat16 and/or with padded rows.
 * `scratch` copies are freed by the caller; copies of the matmul's own inputs (`keep`) stay in the operand cache for
 * the next matmul instead.
 */
function gemmOperand(
  b: CudaBackend,
  x: tf.TensorInfo,
  ld: number,
  bf16: boolean,
  keep: boolean,
): { ptr: number; scratch: boolean } {
  const cols = x.shape.at(-1)!;
  if (!bf16 && ld === cols) return { ptr: b.pointer(x.dataId), scratch: false };
  const make = () => {
    if (ld === cols) return bf16Copy(b, x);
    const dst = b.device.alloc((bf16 ? 2 : 4) * (sizeOf(x.shape) / cols) * ld);
    pitchedCopy(b, bf16, dst, b.pointer(x.dataId), sizeOf(x.shape) / cols, cols, ld, cols);
    return dst;
  };
  if (keep) return { ptr: cachedOperand(b.device, x.dataId, ld, bf16, make), scratch: false };
  return { ptr: make(), scratch: true };
}

/** out [batch, cols, rows] ← inᵀ, in [batch, rows, cols] (float32 device buffers). */
function transposeTile(
  b: CudaBackend,
  out: number,
  input: number,
  rows: number,
  cols: number,
  batch = 1,
): void {
  const d = b.device;
  const grid = transposeTileGrid(rows, cols);
  d.launch(
    d.kernel('transpose_tile', transposeTileSource('transpose_tile')),
    grid.x,
    TRANSPOSE_BLOCK,
    [ptr(out), ptr(input), i64(rows), i64(cols)],
    'transpose_tile',
    grid.y,
    batch,
  );
}

/** x [..., rows, cols] → a new tensor [..., cols, rows]. */
function transposedCopy(b: CudaBackend, x: tf.TensorInfo): tf.TensorInfo {
  const rows = x.shape.at(-2)!;
  const cols = x.shape.at(-1)!;
  const out = b.makeOutput([...x.shape.slice(0, -2), cols, rows], 'float32');
  transposeTile(b, b.pointer(out.dataId), b.pointer(x.dataId), rows, cols, sizeOf(x.shape.slice(0, -2)));
  return out;
}

/**
 * Whether a fused matmul's bias is one value per output column (shape [N], [1, N], …): then the GEMM adds it (its
 * output is first filled with the bias rows and cuBLAS runs with β = 1) instead of a separate broadcasting Add.
 */
export function isRowBias(biasShape: readonly number[], n: number): boolean {
  return (
    biasShape.length > 0 &&
    biasShape.at(-1) === n &&
    biasShape.every((s, d) => d === biasShape.length - 1 || s === 1)
  );
}

/**
 * tfjs BatchMatMul through cublasSgemmStridedBatched (or cublasGemmStridedBatchedEx with TF32 or bf16 inputs);
 * `rowBias` ([N] values, see isRowBias) is added to every row of the product.
 */
export function batchMatMul(
  b: CudaBackend,
  a: tf.TensorInfo,
  bt: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  rowBias?: tf.TensorInfo,
): tf.TensorInfo {
  if (a.dtype !== 'float32' || bt.dtype !== 'float32')
    throw new Error(`backend 'cuda': BatchMatMul of ${a.dtype} and ${bt.dtype} (float32 only)`);
  const plan = gemmPlan(a.shape, bt.shape, transposeA, transposeB);
  const batch = sizeOf(plan.batchShape);
  if (
    process.env.KSTAR_CUDA_TRANSPOSE_FIRST !== '0' &&
    transposedFirstOperandPays(matmulPrecision(), { ...plan, batch }, transposeA, transposeB)
  ) {
    if (!rowBias && transposedProductPays(matmulPrecision(), plan)) {
      // Cᵀ [..., N, M] = Bᵀ·A with Bᵀ copied, then transposed into C (see transposedProductPays).
      const btT = transposedCopy(b, bt);
      const ct = batchMatMul(b, btT, a, false, false);
      b.disposeData(btT.dataId);
      const out = transposedCopy(b, ct);
      b.disposeData(ct.dataId);
      return out;
    }
    // Aᵀ copied into [..., M, K] first: the plain product runs twice as fast in TF32 (see transposedFirstOperandPays).
    const at = transposedCopy(b, a);
    const out = batchMatMul(b, at, bt, false, false, rowBias);
    b.disposeData(at.dataId); // stream-ordered: the GEMM queued before still reads it
    return out;
  }
  const out = b.makeOutput([...plan.batchShape, plan.M, plan.N], 'float32');
  if (batch * plan.M * plan.N === 0) return out;
  let A = a;
  let B = bt;
  const batchA = sizeOf(a.shape.slice(0, -2));
  const batchB = sizeOf(bt.shape.slice(0, -2));
  if (batchA !== 1 && batchA !== batch) A = expandBatch(b, a, plan.batchShape);
  if (batchB !== 1 && batchB !== batch) B = expandBatch(b, bt, plan.batchShape);
  const strideA = sizeOf(A.shape.slice(0, -2)) === 1 ? 0 : plan.M * plan.K;
  const strideB = sizeOf(B.shape.slice(0, -2)) === 1 ? 0 : plan.K * plan.N;
  const strideC = plan.M * plan.N;
  const d = b.device;
  d.current = `BatchMatMul [${a.shape}]${transposeA ? 'ᵀ' : ''}·[${bt.shape}]${transposeB ? 'ᵀ' : ''}`;
  const blas = d.libs.cublas;
  const head: GemmHead = [d.cublas, plan.opFirst, plan.opSecond, plan.m, plan.n, plan.k, ONE];
  // With a bias the output starts as the bias rows (a pitched copy reading the same row each time) and β = 1.
  const beta = rowBias ? ONE : ZERO;
  const fillBias = (c: number, ldc: number) => {
    if (rowBias) pitchedCopy(b, false, c, b.pointer(rowBias.dataId), batch * plan.M, plan.N, ldc, 0);
  };
  if (plan.K === 0) {
    if (rowBias) fillBias(b.pointer(out.dataId), plan.N);
    else d.fill32(b.pointer(out.dataId), 0, batch * plan.M * plan.N);
  } else if (transposedOutputPays(matmulPrecision(), { ...plan, batch }, rowBias !== undefined)) {
    // Cᵀ [N, M] (aligned rows of M), then transposed into C: see transposedOutputPays.
    const t = batchMatMul(b, bt, a, !transposeB, !transposeA);
    d.current = `${d.current} transposed output`;
    transposeTile(b, b.pointer(out.dataId), b.pointer(t.dataId), plan.N, plan.M);
    b.disposeData(t.dataId);
  } else if (matmulPrecision() !== 'strict') {
    const precision = matmulPrecision();
    const bf16 = precision === 'bf16';
    const inType = bf16 ? CUDA_R_16BF : CUDA_R_32F;
    // Tensor-core kernels need 16-byte aligned rows: misaligned operands and output go through padded copies.
    const ld = alignedLds(
      precision,
      { first: plan.ldFirst, second: plan.ldSecond, out: plan.ldc },
      batch * plan.M * plan.N * plan.K,
    );
    const first = gemmOperand(b, B, ld.first, bf16, B === bt);
    const second = gemmOperand(b, A, ld.second, bf16, A === a);
    const c = b.pointer(out.dataId);
    fillBias(c, plan.ldc);
    d.current = `${d.current}${bf16 ? ' bf16' : ' tf32'}${ld.first !== plan.ldFirst || ld.second !== plan.ldSecond ? ' padded' : ''}`;
    d.checkBlas(
      blas.cublasGemmStridedBatchedEx(
        ...head,
        first.ptr,
        inType,
        ld.first,
        strideB === 0 ? 0 : B.shape.at(-2)! * ld.first,
        second.ptr,
        inType,
        ld.second,
        strideA === 0 ? 0 : A.shape.at(-2)! * ld.second,
        beta,
        c,
        CUDA_R_32F,
        plan.ldc,
        strideC,
        batch,
        bf16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32,
        CUBLAS_GEMM_DEFAULT,
      ),
      'cublasGemmStridedBatchedEx',
    );
    // Stream-ordered frees: the GEMM queued before them still reads the copies.
    if (first.scratch) d.free(first.ptr);
    if (second.scratch) d.free(second.ptr);
  } else {
    fillBias(b.pointer(out.dataId), plan.N);
    d.checkBlas(
      blas.cublasSgemmStridedBatched(
        ...head,
        b.pointer(B.dataId),
        plan.ldFirst,
        strideB,
        b.pointer(A.dataId),
        plan.ldSecond,
        strideA,
        beta,
        b.pointer(out.dataId),
        plan.ldc,
        strideC,
        batch,
      ),
      'cublasSgemmStridedBatched',
    );
  }
  if (A !== a) b.disposeData(A.dataId);
  if (B !== bt) b.disposeData(B.dataId);
  return out;
}
