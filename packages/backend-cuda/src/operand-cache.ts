import type * as tf from '@tensorflow/tfjs-core';
import type { CudaDevice } from './device.ts';

/**
 * Matmul operand copies (rounded to bfloat16 and/or with padded rows, see gemm-align.ts), kept from one matmul to the
 * next. A backward pass runs a product's two gradient matmuls back to back and both read the incoming gradient
 * (dX = dY·Wᵀ, dW = Xᵀ·dY; the LM head's [B·T, 50,257] logit gradient, padded for TF32; for attention the [B, H, T, T]
 * score gradient in bf16): the second finds dY already copied. Every other kernel clears the cache before it runs
 * (the wrapper in registerCudaKernels), so an entry never outlives a kernel that could write its tensor in place (K*'s
 * optimizers, in-place adds, slice writes), and at most the operands of one matmul are held.
 */
const entries = new Map<tf.DataId, { ld: number; bf16: boolean; ptr: number }[]>();
let owner: CudaDevice | null = null;

/** The copy of `dataId` with rows of `ld` elements (bfloat16 or float32), made by `make` unless the previous matmul left it. */
export function cachedOperand(
  d: CudaDevice,
  dataId: tf.DataId,
  ld: number,
  bf16: boolean,
  make: () => number,
): number {
  owner = d;
  const list = entries.get(dataId) ?? [];
  const hit = list.find((e) => e.ld === ld && e.bf16 === bf16);
  if (hit) return hit.ptr;
  const ptr = make();
  list.push({ ld, bf16, ptr });
  entries.set(dataId, list);
  return ptr;
}

/** Frees every cached copy (stream-ordered: matmuls already queued still read them). */
export function clearOperandCache(): void {
  if (entries.size === 0 || !owner) return;
  for (const list of entries.values()) for (const e of list) owner.free(e.ptr);
  entries.clear();
}

/** Kernels that leave the cache alone: matmuls (its users) and views that launch nothing. */
export const KEEPS_OPERAND_CACHE: ReadonlySet<string> = new Set([
  'BatchMatMul',
  '_FusedMatMul',
  'Reshape',
  'Identity',
]);
