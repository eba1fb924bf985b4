import { quantizedBytes } from './quantize.ts';

/** Smallest slab the row-lazy state allocates (rows): tiny tables grow 8 → 16 → 32 … instead of row by row. */
export const MIN_SLAB_ROWS = 8;

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Slab capacity (rows) once `rowsTouched` of `rows` rows have been seen: 0 before any, else the next power of two
 * ≥ max(rowsTouched, 8), capped at `rows`. Growth doubles, so the capacity after any history depends only on the
 * number of rows seen: at most 2× the rows seen (or all rows).
 */
export function slabCapacity(rowsTouched: number, rows: number): number {
  if (rowsTouched <= 0) return 0;
  let cap = MIN_SLAB_ROWS;
  while (cap < rowsTouched) cap *= 2;
  return Math.min(cap, rows);
}

/**
 * Exact bytes of the row-lazy state of a [rows, d] parameter after `rowsTouched` distinct rows had a nonzero
 * gradient: the row map (int32, 4·rows) + the slab (float32, 4·capacity·d). `quantized`: the slab as it is stored
 * outside the window (8-bit, `quantizedBytes`).
 */
export function lazyRowStateBytes(
  shape: readonly number[],
  rowsTouched: number,
  options: { quantized?: boolean } = {},
): number {
  const [rows, d] = shape as [number, number];
  const slab = slabCapacity(rowsTouched, rows) * d;
  return 4 * rows + (options.quantized ? (slab === 0 ? 0 : quantizedBytes(slab)) : 4 * slab);
}

/** Bytes of dense Adagrad state: one float32 accumulator, 4·numel (`quantized`: `quantizedBytes(numel)`). */
export function denseStateBytes(shape: readonly number[], options: { quantized?: boolean } = {}): number {
  const n = numel(shape);
  return options.quantized ? quantizedBytes(n) : 4 * n;
}
