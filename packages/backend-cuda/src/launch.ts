import * as tf from '@tensorflow/tfjs-core';
import type { CudaBackend } from './backend.ts';
import { CudaDevice } from './device.ts';
import { f32, i32, i64, type Param, ptr, StructBuilder } from './params.ts';
import { contiguousStrides, elementwiseLayout, sizeOf } from './shape.ts';
import {
  argReduceSource,
  type CType,
  columnReduceSource,
  copyColumnsSource,
  elementwiseSource,
  MAX_RANK,
  padSource,
  type ReduceOp,
  reduceSource,
  softmaxSource,
  stridedCopySource,
} from './sources.ts';

/**
 * The launchers every kernel is built from: element-wise (any expression, broadcasting), strided copy, pad,
 * row reductions, softmax, column copies. Each compiles its source once (the device caches it) and queues one
 * launch on the stream.
 */

export const ctype = (dtype: tf.DataType): CType => (dtype === 'float32' ? 'float' : 'int');

function run(
  b: CudaBackend,
  name: string,
  source: string,
  n: number,
  params: Param[],
  grid?: number,
  block = 256,
): void {
  const d = b.device;
  d.current = name;
  d.launch(d.kernel(name, source), grid ?? CudaDevice.gridFor(n), block, params, name);
}

/** Releases a kernel-internal tensor. */
export function release(b: CudaBackend, t: tf.TensorInfo): void {
  b.disposeData(t.dataId);
}

/** A new tensor sharing `x`'s data (reshape, identity). */
export function view(b: CudaBackend, x: tf.TensorInfo, shape: number[], dtype = x.dtype): tf.TensorInfo {
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape, dtype };
}

/**
 * out = expr(a, b, c) over the broadcast shape of the inputs. `tag` names the kernel (letters, digits, _);
 * `p0`, `p1` are float parameters the expression may read.
 */
export function elementwise(
  b: CudaBackend,
  tag: string,
  inputs: readonly tf.TensorInfo[],
  outDtype: tf.DataType,
  expr: string,
  p0 = 0,
  p1 = 0,
  outShape?: number[],
): tf.TensorInfo {
  let shape = outShape ?? inputs[0]!.shape.slice();
  if (!outShape)
    for (const t of inputs.slice(1)) shape = tf.backend_util.assertAndGetBroadcastShape(shape, t.shape);
  const out = b.makeOutput(shape, outDtype);
  const n = sizeOf(shape);
  if (n === 0) return out;
  const inTypes = inputs.map((t) => ctype(t.dtype));
  const name = `ew_${tag}_${inTypes.map((t) => t[0]).join('')}_${ctype(outDtype)[0]}`;
  const layout = elementwiseLayout(
    shape,
    inputs.map((t) => t.shape),
  );
  const meta = new StructBuilder().int(layout.shape.length).int(layout.shape, MAX_RANK);
  for (let k = 0; k < 3; k++) meta.int(layout.strides[k] ?? [], MAX_RANK);
  run(b, name, elementwiseSource(name, inTypes, ctype(outDtype), expr), n, [
    ptr(b.pointer(out.dataId)),
    ...inputs.map((t) => ptr(b.pointer(t.dataId))),
    i64(n),
    meta.build(),
    i32(layout.modeBits),
    f32(p0),
    f32(p1),
  ]);
  return out;
}

/**
 * out[c] = x[offset + Σ c_d·strides_d] over `shape` (c_d modulo mods_d where given): transpose, slice, strided
 * slice, reverse, broadcastTo, tile.
 */
export function stridedCopy(
  b: CudaBackend,
  x: tf.TensorInfo,
  shape: number[],
  strides: number[],
  offset = 0,
  mods: number[] = [],
  outShape = shape,
): tf.TensorInfo {
  const out = b.makeOutput(outShape, x.dtype);
  const n = sizeOf(shape);
  if (n === 0) return out;
  // Dimensions of size 1 contribute nothing; dropping them keeps most ranks within MAX_RANK.
  const keep = shape.map((s, d) => s !== 1 || (mods[d] ?? 0) > 1);
  const sh = shape.filter((_, d) => keep[d]);
  if (sh.length > MAX_RANK) throw new Error(`strided copy of rank ${sh.length} (at most ${MAX_RANK})`);
  const keptMods = mods.length ? mods.filter((_, d) => keep[d]) : [];
  const keptStrides = strides.filter((_, d) => keep[d]);
  const v = vectorCopy(sh, keptStrides, keptMods, offset);
  const t = v ? 'int4' : ctype(x.dtype);
  const name = `strided_copy_${t}`;
  const meta = new StructBuilder()
    .int(sh.length)
    .int(v ? v.shape : sh, MAX_RANK)
    .int(keptMods, MAX_RANK)
    .longLong(v ? v.strides : keptStrides, MAX_RANK);
  const count = v ? n / 4 : n;
  run(b, name, stridedCopySource(name, t), count, [
    ptr(b.pointer(out.dataId)),
    ptr(b.pointer(x.dataId)),
    i64(count),
    i64(v ? offset / 4 : offset),
    meta.build(),
  ]);
  return out;
}

/**
 * A strided copy in 16-byte units (4 elements a thread, one 128-bit load and store): where the innermost dimension is
 * contiguous in the input with a length, and every other stride and the offset, multiples of 4, and nothing wraps
 * (no mods). Returns the shape and strides in units of 4 elements, or null. Transposes that keep the last axis (a
 * GPT's heads [B, T, H, dh] ↔ [B, H, T, dh]) are this.
 */
export function vectorCopy(
  shape: readonly number[],
  strides: readonly number[],
  mods: readonly number[],
  offset: number,
): { shape: number[]; strides: number[] } | null {
  const r = shape.length;
  if (r === 0 || strides[r - 1] !== 1 || shape[r - 1]! % 4 !== 0 || offset % 4 !== 0) return null;
  if (mods.some((m) => m > 0) || strides.slice(0, -1).some((s) => s % 4 !== 0)) return null;
  return {
    shape: shape.map((s, d) => (d === r - 1 ? s / 4 : s)),
    strides: strides.map((s, d) => (d === r - 1 ? 1 : s / 4)),
  };
}

export function transpose(b: CudaBackend, x: tf.TensorInfo, perm: readonly number[]): tf.TensorInfo {
  const s = contiguousStrides(x.shape);
  return stridedCopy(
    b,
    x,
    perm.map((p) => x.shape[p]!),
    perm.map((p) => s[p]!),
  );
}

export function pad(
  b: CudaBackend,
  x: tf.TensorInfo,
  paddings: readonly (readonly [number, number])[],
  value: number,
): tf.TensorInfo {
  const outShape = x.shape.map((n, d) => n + paddings[d]![0] + paddings[d]![1]);
  const out = b.makeOutput(outShape, x.dtype);
  const n = sizeOf(outShape);
  if (n === 0) return out;
  if (x.shape.length > MAX_RANK) throw new Error(`PadV2 of rank ${x.shape.length} (at most ${MAX_RANK})`);
  const t = ctype(x.dtype);
  const name = `pad_${t}`;
  const meta = new StructBuilder()
    .int(x.shape.length)
    .int(outShape, MAX_RANK)
    .int(x.shape, MAX_RANK)
    .int(
      paddings.map((p) => p[0]),
      MAX_RANK,
    );
  run(b, name, padSource(name, t), n, [
    ptr(b.pointer(out.dataId)),
    ptr(b.pointer(x.dataId)),
    i64(n),
    meta.build(),
    f32(value),
  ]);
  return out;
}

/** Reduces each row of x viewed as [rows, cols] into out (rows elements); `scale` multiplies the result. */
export function reduceRows(
  b: CudaBackend,
  x: tf.TensorInfo,
  rows: number,
  cols: number,
  op: ReduceOp,
  outShape: number[],
  outDtype: tf.DataType,
  scale = 1,
): tf.TensorInfo {
  // Reduce in the input's storage type; a dtype change (bool → int32 sums, Mean of int32) is the same storage or a cast after.
  const t = ctype(x.dtype);
  const red = b.makeOutput(outShape, ctype(outDtype) === t ? outDtype : x.dtype);
  if (rows > 0) {
    if (cols === 0) throw new Error(`reduction over an empty axis (shape [${x.shape}])`);
    const name = `reduce_${op}_${t}`;
    run(
      b,
      name,
      reduceSource(name, op, t),
      rows,
      [ptr(b.pointer(red.dataId)), ptr(b.pointer(x.dataId)), i64(cols), f32(scale)],
      rows,
    );
  }
  if (red.dtype === outDtype) return red;
  const cast = elementwise(b, 'cast', [red], outDtype, 'a');
  release(b, red);
  return cast;
}

/** Rows each thread of a column reduction's first pass reduces (then one pass over the partials). */
const COLUMN_CHUNK = 64;

/**
 * Reduces x viewed as [rows, cols] over its rows into [cols] (the leading axes of x reduced, no transpose); `scale`
 * multiplies the result. `outDtype` has x's storage type (bool → int32 sums).
 */
export function reduceColumns(
  b: CudaBackend,
  x: tf.TensorInfo,
  rows: number,
  cols: number,
  op: ReduceOp,
  outShape: number[],
  outDtype: tf.DataType,
  scale = 1,
): tf.TensorInfo {
  const t = ctype(x.dtype);
  if (ctype(outDtype) !== t) throw new Error(`column reduction of ${x.dtype} into ${outDtype}: cast first`);
  const out = b.makeOutput(outShape, outDtype);
  if (cols === 0) return out;
  if (rows === 0) throw new Error(`reduction over an empty axis (shape [${x.shape}])`);
  const name = `colreduce_${op}_${t}`;
  const source = columnReduceSource(name, op, t);
  const pass = (dst: tf.TensorInfo, src: tf.TensorInfo, r: number, chunk: number, s: number) =>
    run(b, name, source, Math.ceil(r / chunk) * cols, [
      ptr(b.pointer(dst.dataId)),
      ptr(b.pointer(src.dataId)),
      i64(r),
      i64(cols),
      i64(chunk),
      f32(s),
    ]);
  if (rows <= 4 * COLUMN_CHUNK) {
    pass(out, x, rows, rows, scale);
    return out;
  }
  const chunks = Math.ceil(rows / COLUMN_CHUNK);
  const partial = b.makeOutput([chunks, cols], x.dtype);
  pass(partial, x, rows, COLUMN_CHUNK, 1);
  pass(out, partial, chunks, chunks, scale);
  release(b, partial);
  return out;
}

export function argReduceRows(
  b: CudaBackend,
  x: tf.TensorInfo,
  rows: number,
  cols: number,
  op: 'max' | 'min',
  outShape: number[],
): tf.TensorInfo {
  const out = b.makeOutput(outShape, 'int32');
  if (rows === 0) return out;
  const t = ctype(x.dtype);
  const name = `arg${op}_${t}`;
  run(
    b,
    name,
    argReduceSource(name, op, t),
    rows,
    [ptr(b.pointer(out.dataId)), ptr(b.pointer(x.dataId)), i64(cols)],
    rows,
  );
  return out;
}

export function softmaxRows(b: CudaBackend, x: tf.TensorInfo, rows: number, cols: number): tf.TensorInfo {
  const out = b.makeOutput(x.shape, 'float32');
  if (rows === 0) return out;
  const name = 'softmax_float';
  run(
    b,
    name,
    softmaxSource(name),
    rows,
    [ptr(b.pointer(out.dataId)), ptr(b.pointer(x.dataId)), i64(cols)],
    rows,
  );
  return out;
}

/** Copies x viewed as [rows, cols] into columns [colOffset, colOffset + cols) of out viewed as [rows, outCols]. */
export function copyColumns(
  b: CudaBackend,
  out: tf.TensorInfo,
  x: tf.TensorInfo,
  rows: number,
  cols: number,
  outCols: number,
  colOffset: number,
): void {
  const n = rows * cols;
  if (n === 0) return;
  if (rows === 1) {
    b.device.copy(b.pointer(out.dataId) + 4 * colOffset, b.pointer(x.dataId), 4 * cols);
    return;
  }
  const t = ctype(x.dtype);
  const name = `copy_columns_${t}`;
  run(b, name, copyColumnsSource(name, t), n, [
    ptr(b.pointer(out.dataId)),
    ptr(b.pointer(x.dataId)),
    i64(rows),
    i64(cols),
    i64(outCols),
    i64(colOffset),
  ]);
}

/** Launches one of the fixed sources over a grid-stride loop of n elements. */
export function launchFixed(b: CudaBackend, name: string, source: string, n: number, params: Param[]): void {
  if (n > 0) run(b, name, source, n, params);
}

/** Launches a row kernel: one block of `block` threads for each of `rows` rows. */
export function launchRows(
  b: CudaBackend,
  name: string,
  source: string,
  rows: number,
  params: Param[],
  block = 256,
): void {
  if (rows > 0) run(b, name, source, rows, params, rows, block);
}
