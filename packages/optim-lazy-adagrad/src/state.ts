import { InputError, stateVariableFrom } from '@kstar/core';
import { dequantizeBlockwise, quantizeBlockwise } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';
import type { RowSelection } from './kernel.ts';
import { canReadSync, dequantizeTensor, QUANT_BLOCK, quantizeTensor } from './quantize.ts';
import { slabCapacity } from './state-bytes.ts';

/**
 * The state of one parameter, as tensors (what the engine's ledger counts):
 * - dense: `acc` float32 variable of the parameter's shape;
 * - row-lazy ([V, d]): `rowMap` int32 variable [V] (row → slab slot, −1 = never touched) and `acc`, the slab
 *   float32 variable [capacity, d] (absent while no row has been touched);
 * - outside the window, `acc` is replaced by `accCodes` int32 [⌈n/4⌉] + `accAbsmax` float32 [⌈n/256⌉] (8-bit).
 */
export type LazyAdagradState = {
  acc?: tf.Variable;
  rowMap?: tf.Variable;
  accCodes?: tf.Tensor;
  accAbsmax?: tf.Tensor;
};

/** Host-side facts about a state record (no tensors). */
export interface StateMeta {
  name: string;
  group: string;
  /** Row-lazy: distinct rows allocated so far (undefined until read from the row map). */
  rowsTouched?: number;
  /** Shape of `acc` while it is stored quantized. */
  accShape?: number[];
  /** Row-lazy state that had to allocate every row at once (backend without synchronous read-back). */
  allRows?: boolean;
}

export const isLazy = (s: LazyAdagradState): boolean => s.rowMap != null;

/** Rows allocated in a row map: its entries ≥ 0. */
export function countAllocated(rowMap: tf.Tensor): number {
  const m = rowMap.dataSync() as Int32Array;
  let n = 0;
  for (let i = 0; i < m.length; i++) if (m[i]! >= 0) n++;
  return n;
}

/** The initial state of a parameter (dense: `acc` filled with `init`; row-lazy: an all −1 row map, no slab). */
export function createState(
  name: string,
  shape: readonly number[],
  lazy: boolean,
  init: number,
): LazyAdagradState {
  if (lazy) {
    return { rowMap: stateVariableFrom(`${name}/rowMap`, () => tf.fill([shape[0]!], -1, 'int32')) };
  }
  return { acc: stateVariableFrom(`${name}/accumulator`, () => tf.fill(shape as number[], init, 'float32')) };
}

/**
 * Allocates slab slots for the rows of `grad` that are not all zero and returns them (rows ascending). Grows the
 * slab (doubling, `slabCapacity`) and rewrites the row map only when new rows appear. Needs synchronous read-back;
 * on a backend without it (webgpu in Node) every row is allocated at once (identity map, dense update) and
 * `undefined` is returned: the update is then exact dense Adagrad.
 */
export function allocateRows(
  state: LazyAdagradState,
  meta: StateMeta,
  grad: tf.Tensor,
  init: number,
): RowSelection | undefined {
  const rowMap = state.rowMap!;
  const [V, d] = grad.shape as [number, number];
  if (meta.allRows) return undefined;
  if (!canReadSync()) {
    // No synchronous read-back: the touched rows cannot be known on the host, so allocate them all (identity map).
    if (state.acc != null && state.acc.shape[0] === V) {
      meta.allRows = true; // restored state that already has every row
      return undefined;
    }
    const old = state.acc;
    const slab = stateVariableFrom(`${meta.name}/accumulator`, () => {
      const fresh = tf.fill([V, d], init, 'float32');
      if (old == null) return fresh;
      // Keep the values of rows already allocated: slab row map[r] moves to row r.
      const ids = tf.maximum(rowMap, 0);
      const moved = tf.gather(old, ids);
      const had = tf.expandDims(tf.cast(tf.greaterEqual(rowMap, 0), 'float32'), 1); // [V, 1]
      return tf.add(tf.mul(moved, had), tf.mul(fresh, tf.sub(1, had))); // [V, d]
    });
    old?.dispose();
    state.acc = slab;
    tf.tidy(() => rowMap.assign(tf.range(0, V, 1, 'int32')));
    meta.rowsTouched = V;
    meta.allRows = true;
    return undefined;
  }
  const g = grad.dataSync() as Float32Array;
  const map = rowMap.dataSync() as Int32Array; // read only: on cpu this is the live buffer
  let count = meta.rowsTouched ?? countAllocated(rowMap);
  let next: Int32Array | null = null;
  const rows: number[] = [];
  const slots: number[] = [];
  for (let r = 0; r < V; r++) {
    let touched = false;
    for (let j = r * d, end = j + d; j < end; j++) {
      if (g[j] !== 0) {
        touched = true; // NaN counts as touched (it must propagate, as in dense Adagrad)
        break;
      }
    }
    if (!touched) continue;
    let s = map[r]!;
    if (s < 0) {
      next ??= map.slice();
      s = count++;
      next[r] = s;
    }
    rows.push(r);
    slots.push(s);
  }
  if (next != null) {
    const cap = state.acc?.shape[0] ?? 0;
    const want = slabCapacity(count, V);
    if (want > cap) {
      const old = state.acc;
      state.acc = stateVariableFrom(`${meta.name}/accumulator`, () => {
        const fresh = tf.fill([want - cap, d], init, 'float32'); // [want − cap, d]
        return old == null ? fresh : tf.concat([old, fresh], 0); // [want, d]
      });
      old?.dispose();
    }
    const values = next;
    tf.tidy(() => rowMap.assign(tf.tensor1d(values, 'int32')));
  }
  meta.rowsTouched = count;
  return { rows: Int32Array.from(rows), slots: Int32Array.from(slots) };
}

/**
 * What the 8-bit codes store: `'sqrt'` quantizes √acc (Adagrad's denominator; half the dynamic range in decades, so
 * small accumulators beside large ones in a block keep more precision) and squares on expansion; `'linear'`
 * quantizes acc itself.
 */
/**
 * How accumulators outside the window are stored (8 bits an element, blocks of 256 with a float32 max each):
 * `sqrt`: √acc on linear codes; `linear`: acc on linear codes; `dynamic`: √acc on `@kstar/kernels`' bitsandbytes
 * unsigned dynamic map, whose codes are spaced roughly logarithmically, so an element far below its block's max keeps
 * a few % of relative precision instead of rounding to 0.
 */
export type WindowEncoding = 'sqrt' | 'linear' | 'dynamic';

/** Stores `acc` 8-bit (window eviction). No-op when already quantized or when there is no slab yet. */
export function compress(state: LazyAdagradState, meta: StateMeta, encoding: WindowEncoding = 'sqrt'): void {
  const acc = state.acc;
  if (acc == null || acc.isDisposed) return;
  let q: { codes: tf.Tensor; absmax: tf.Tensor };
  if (encoding === 'dynamic') {
    const root = tf.sqrt(acc);
    q = quantizeBlockwise(root, { signed: false, blockSize: QUANT_BLOCK });
    root.dispose();
  } else if (encoding === 'sqrt') {
    const root = tf.sqrt(acc);
    q = quantizeTensor(root);
    root.dispose();
  } else {
    q = quantizeTensor(acc);
  }
  meta.accShape = acc.shape.slice();
  acc.dispose();
  delete state.acc;
  state.accCodes = q.codes;
  state.accAbsmax = q.absmax;
}

/** Restores a float32 `acc` from its 8-bit form (the group's gradients arrived). No-op when already float32. */
export function expand(state: LazyAdagradState, meta: StateMeta, encoding: WindowEncoding = 'sqrt'): void {
  const { accCodes, accAbsmax } = state;
  if (accCodes == null || accAbsmax == null) return;
  if (meta.accShape == null) {
    throw new InputError(`lazyAdagrad: the quantized state of '${meta.name}' has no recorded shape`);
  }
  const shape = meta.accShape;
  state.acc = stateVariableFrom(`${meta.name}/accumulator`, () => {
    const v =
      encoding === 'dynamic'
        ? dequantizeBlockwise({ codes: accCodes, absmax: accAbsmax }, shape, {
            signed: false,
            blockSize: QUANT_BLOCK,
          })
        : dequantizeTensor({ codes: accCodes as tf.Tensor1D, absmax: accAbsmax as tf.Tensor1D }, shape);
    return encoding === 'linear' ? v : tf.square(v);
  });
  tf.dispose([accCodes, accAbsmax]);
  delete state.accCodes;
  delete state.accAbsmax;
}
