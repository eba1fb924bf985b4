import * as tf from '@tensorflow/tfjs-core';
import type { OptimizerPlugin, OptimizerState } from './contracts.ts';
import { InputError } from './errors.ts';

/**
 * Gradient partitioning: the update of a large weight walks its gradient in row chunks, so the update's temporaries
 * are bounded by the chunk, not the weight. For each chunk of rows [r0, r1):
 *   1. copy the parameter's rows, the gradient's rows and the matching slice of every state entry (chunk-sized);
 *   2. run the optimizer's ordinary `update` on those copies (its temporaries are chunk-sized);
 *   3. write the new parameter rows and state slices back into the full variables IN PLACE (`SliceWriter`, from
 *      `@kstar/kernels`' `sliceWriter`), then free the copies.
 * Rows per chunk = ⌊chunkBytes / (bytes per row of: the copies + the update's own peak)⌋, rounded down to the
 * state's alignment (e.g. whole quantization blocks of 8-bit state), so the extra bytes of an update stay within
 * `chunkBytes`. Only element-wise optimizers (AdamW, Lion, 8-bit Adam, dense Lazy Adagrad) declare `rowChunks`;
 * factored ones (Adafactor, CAME, AdaLomo) need whole-row/column statistics and update whole.
 */

/** Writes `source` into `target`'s flat elements [offset, offset + source.size), in place. */
export interface SliceWriter {
  /** False where the write allocates a target-sized temporary (no in-place kernel on this backend). */
  inPlace(): boolean;
  write(target: tf.Variable, source: tf.Tensor, offset: number): void;
}

export interface PartitionOptions {
  /** Byte budget of one chunk's copies and temporaries. */
  chunkBytes: number;
  /** The in-place writer; default `opsSliceWriter`, whose write allocates a weight-sized temporary (tests only). */
  writer?: SliceWriter;
}

export interface PartitionPlan {
  /** Rows of the parameter (its first dimension). */
  rows: number;
  rowsPerChunk: number;
  chunks: number;
  /** Bytes per row a chunk holds: copies of parameter, gradient and state rows + the update's own temporaries. */
  bytesPerRow: number;
  /** State entry → parameter elements per state element. */
  layout: Readonly<Record<string, number>>;
}

/** A portable writer from tfjs ops: `assign(concat(before, source, after))`, i.e. NOT bounded (weight-sized). */
export const opsSliceWriter: SliceWriter = {
  inPlace: () => false,
  write(target, source, offset) {
    tf.tidy(() => {
      const flat = tf.reshape(target, [-1]);
      const end = offset + source.size;
      const parts = [
        tf.slice(flat, 0, offset),
        tf.reshape(source, [-1]),
        tf.slice(flat, end, flat.size - end),
      ];
      target.assign(tf.reshape(tf.concat(parts), target.shape));
    });
  },
};

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number): number => (a / gcd(a, b)) * b;

/**
 * How `partitionedUpdate` would chunk a parameter of `shape` with this state, or null when it updates whole: the
 * optimizer has no `rowChunks`, its state cannot be chunked, the parameter has fewer than 2 rows, or one chunk holds
 * every row. Throws when `chunkBytes` cannot hold even one aligned group of rows.
 */
export function planPartition(
  plugin: OptimizerPlugin,
  shape: readonly number[],
  state: OptimizerState,
  chunkBytes: number,
): PartitionPlan | null {
  if (!(Number.isInteger(chunkBytes) && chunkBytes > 0)) {
    throw new InputError(`chunkBytes = ${chunkBytes} is invalid: pass a positive integer number of bytes`);
  }
  const aligned = rowAlignment(plugin, shape, state);
  if (aligned == null) return null;
  const spec = plugin.rowChunks!;
  const { layout, rowStep } = aligned;
  const rows = shape[0]!;
  const rowElems = shape.slice(1).reduce((a, b) => a * b, 1);
  let copyBytesPerElem = 8; // parameter rows + gradient rows
  for (const ratio of Object.values(layout)) copyBytesPerElem += 4 / ratio;
  const bytesPerElem = copyBytesPerElem + spec.updateBytesPerElement(state, shape);
  const bytesPerRow = Math.ceil(bytesPerElem * rowElems);
  const rowsPerChunk = Math.floor(chunkBytes / bytesPerRow / rowStep) * rowStep;
  if (rowsPerChunk < 1) {
    throw new InputError(
      `chunkBytes = ${chunkBytes} cannot hold one chunk of ${rowStep} row(s) of [${shape}] under ${plugin.name} (${bytesPerRow * rowStep} bytes): raise updateChunkBytes to at least ${bytesPerRow * rowStep}`,
    );
  }
  if (rowsPerChunk >= rows) return null;
  return { rows, rowsPerChunk, chunks: Math.ceil(rows / rowsPerChunk), bytesPerRow, layout };
}

/**
 * Whether an element-wise optimizer's update of a parameter of `shape` with this state can run on row ranges, and
 * the rows of one aligned group (`rowStep`: a range starting at a multiple of it starts on a whole element of every
 * state entry, e.g. a whole 8-bit quantization block). Null: no `rowChunks`, unchunkable state, or fewer than 2 rows.
 * Used by gradient partitioning and by ZeRO's row-range ownership (`@kstar/shard-zero`).
 */
export function rowAlignment(
  plugin: OptimizerPlugin,
  shape: readonly number[],
  state: OptimizerState,
): { rowStep: number; layout: Readonly<Record<string, number>> } | null {
  const spec = plugin.rowChunks;
  if (spec == null || shape.length < 1 || shape[0]! < 2) return null;
  const layout = spec.stateLayout(state, shape);
  if (layout == null) return null;
  const rowElems = shape.slice(1).reduce((a, b) => a * b, 1);
  let align = 1; // range starts (in elements) must be multiples of every state entry's ratio
  for (const [key, ratio] of Object.entries(layout)) {
    if (state[key] == null || !(Number.isInteger(ratio) && ratio >= 1)) return null;
    align = lcm(align, ratio);
  }
  return { rowStep: align / gcd(rowElems, align), layout };
}

let chunkId = 0;

/** A variable owning a copy of `make()` (refCount 1, so in-place kernels may write it). */
function chunkVariable(make: () => tf.Tensor): tf.Variable {
  return tf.tidy(() => {
    const t = make();
    return tf.variable(t, false, `__kstar_chunk_${chunkId++}`, t.dtype);
  });
}

/**
 * Copies of rows [r0, r0 + n) of every state entry of a parameter of `shape` (entries of the parameter's layout are
 * sliced by rows, packed ones by their flat elements per `layout`), as variables the caller owns.
 */
export function stateRows(
  state: OptimizerState,
  layout: Readonly<Record<string, number>>,
  shape: readonly number[],
  r0: number,
  n: number,
): Record<string, tf.Variable> {
  const rowElems = shape.slice(1).reduce((a, b) => a * b, 1);
  const e0 = r0 * rowElems;
  const e1 = e0 + n * rowElems;
  const rows: Record<string, tf.Variable> = {};
  for (const [key, ratio] of Object.entries(layout)) {
    const t = state[key]!;
    rows[key] = chunkVariable(() =>
      tf.util.arraysEqual(t.shape, shape as number[])
        ? tf.slice(t, r0, n)
        : tf.slice(tf.reshape(t, [-1]), e0 / ratio, Math.ceil(e1 / ratio) - e0 / ratio),
    );
  }
  return rows;
}

/**
 * Updates `param` from `grad` through `plugin.update`, in row chunks of at most `chunkBytes` of copies and
 * temporaries (see the file comment), or whole when `planPartition` says so. Same contract as `update`: `grad` is
 * kept, nothing new stays alive. Exact for element-wise optimizers: every element sees the same arithmetic.
 */
export function partitionedUpdate(
  plugin: OptimizerPlugin,
  param: tf.Variable,
  grad: tf.Tensor,
  state: OptimizerState,
  step: number,
  options: PartitionOptions,
): PartitionPlan | null {
  const plan = planPartition(plugin, param.shape, state, options.chunkBytes);
  if (plan == null) {
    plugin.update(param, grad, state, step);
    return null;
  }
  const writer = options.writer ?? opsSliceWriter;
  const rowElems = param.size / plan.rows;
  for (let r0 = 0; r0 < plan.rows; r0 += plan.rowsPerChunk) {
    const n = Math.min(plan.rowsPerChunk, plan.rows - r0);
    const e0 = r0 * rowElems;
    const p = chunkVariable(() => tf.slice(param, r0, n)); // [n, ...rest]
    const g = tf.slice(grad, r0, n); // [n, ...rest]
    const chunkState = stateRows(state, plan.layout, param.shape, r0, n);
    try {
      plugin.update(p, g, chunkState, step);
      writer.write(param, p, e0);
      for (const [key, ratio] of Object.entries(plan.layout)) {
        writer.write(state[key] as tf.Variable, chunkState[key]!, e0 / ratio);
      }
    } finally {
      tf.dispose([p, g, ...Object.values(chunkState)]);
    }
  }
  return plan;
}
