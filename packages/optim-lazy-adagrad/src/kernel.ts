import { InputError, ShapeError } from '@kstar/core';
import {
  canWriteInPlace,
  checkFloat32,
  checkShapeOfParam,
  defineKernel,
  inPlaceArrayKernels,
} from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';

/** The numbers one Adagrad step needs. */
export interface AdagradStepHyper {
  lr: number;
  eps: number;
  /** Keras placement √(acc + eps) instead of torch's √acc + eps. */
  epsInsideSqrt: boolean;
}

/**
 * The touched rows of a row-lazy update: `rows[k]` of the parameter (and gradient) uses slab row `slots[k]` of the
 * accumulator. Rows not listed are not read nor written.
 */
export interface RowSelection {
  rows: Int32Array;
  slots: Int32Array;
}

export interface AdagradArgs {
  /** The parameter, updated in place: [..shape] (dense) or [V, d] (row-lazy). */
  param: tf.Variable;
  /** The gradient, read only, never disposed; the parameter's shape. */
  grad: tf.Tensor;
  /** The accumulator, updated in place: the parameter's shape (dense) or the slab [capacity, d] (row-lazy). */
  acc: tf.Variable;
  hp: AdagradStepHyper;
  /** Row-lazy: only these rows (gather → update → scatter). Absent: every element. */
  select?: RowSelection;
}

interface Attrs {
  lr: number;
  eps: number;
  epsInside: number;
  /** Row count of the selection, −1 for dense. */
  nRows: number;
  d: number;
  rows: Int32Array;
  slots: Int32Array;
}

/** One element: acc ← acc + g²; p ← p − lr·g/(√acc + eps) (or /√(acc + eps)). float64 math, float32 storage. */
function updateRange(
  p: Float32Array,
  g: Float32Array,
  a: Float32Array,
  pOff: number,
  aOff: number,
  len: number,
  k: Attrs,
): void {
  const { lr, eps, epsInside } = k;
  for (let j = 0; j < len; j++) {
    const gi = g[pOff + j]!;
    a[aOff + j] = a[aOff + j]! + gi * gi;
    const ai = a[aOff + j]!; // the stored (float32) accumulator, as the fallback and torch-float32 use it
    const denom = epsInside ? Math.sqrt(ai + eps) : Math.sqrt(ai) + eps;
    p[pOff + j] = p[pOff + j]! - (lr * gi) / denom;
  }
}

function updateArrays(p: Float32Array, g: Float32Array, a: Float32Array, k: Attrs): void {
  if (k.nRows < 0) {
    updateRange(p, g, a, 0, 0, p.length, k);
    return;
  }
  for (let r = 0; r < k.nRows; r++) updateRange(p, g, a, k.rows[r]! * k.d, k.slots[r]! * k.d, k.d, k);
}

type Inputs = { param: tf.TensorInfo; grad: tf.TensorInfo; acc: tf.TensorInfo };

/** cpu and wasm: the loop in place over p and the accumulator (their outputs, in that order). */
const adagradArrays = inPlaceArrayKernels<Inputs, Attrs>(['param', 'acc'], (a, k) =>
  updateArrays(a.param, a.grad, a.acc, k),
);

const denominator = (a: tf.Tensor, hp: AdagradStepHyper) =>
  hp.epsInsideSqrt ? tf.sqrt(tf.add(a, hp.eps)) : tf.add(tf.sqrt(a), hp.eps);

/**
 * Portable path (tfjs ops + `assign`). Dense: element-wise. Row-lazy: gather the touched rows of g, p and the slab,
 * update them, scatter back with `tensorScatterUpdate` (which rebuilds the full tensors: the fallback trades memory
 * for portability; the native kernels touch only the selected rows, in place).
 */
function adagradFallback({ param, grad, acc, hp, select }: AdagradArgs): void {
  tf.tidy(() => {
    if (select == null) {
      const a = tf.add(acc, tf.square(grad));
      acc.assign(a);
      param.assign(tf.sub(param, tf.mul(tf.div(grad, denominator(a, hp)), hp.lr)));
      return;
    }
    if (select.rows.length === 0) return;
    const idx = tf.tensor1d(select.rows, 'int32'); // [n]
    const slots = tf.tensor1d(select.slots, 'int32'); // [n]
    const gRows = tf.gather(grad, idx); // [n, d]
    const aRows = tf.add(tf.gather(acc, slots), tf.square(gRows)); // [n, d]
    const pRows = tf.sub(tf.gather(param, idx), tf.mul(tf.div(gRows, denominator(aRows, hp)), hp.lr)); // [n, d]
    acc.assign(tf.tensorScatterUpdate(acc, tf.expandDims(slots, 1), aRows));
    param.assign(tf.tensorScatterUpdate(param, tf.expandDims(idx, 1), pRows));
  });
}

/** In place only when nothing else holds p or acc (clones, tape-saved tensors) and no buffer is shared. */
function canRunInPlace({ param, grad, acc }: AdagradArgs, backend: tf.KernelBackend): boolean {
  return canWriteInPlace([param, acc], [grad], backend);
}

const EMPTY = new Int32Array(0);

/**
 * `KstarLazyAdagrad`: native in place on cpu and wasm (typed-array loops over the selected rows only), tfjs ops
 * elsewhere (webgpu, tensorflow) and whenever a buffer is shared.
 */
export const lazyAdagradKernel = defineKernel<AdagradArgs, void, Inputs, Attrs>({
  name: 'KstarLazyAdagrad',
  backends: adagradArrays,
  invoke: ({ param, grad, acc, hp, select }) => ({
    inputs: { param, grad, acc },
    attrs: {
      lr: hp.lr,
      eps: hp.eps,
      epsInside: hp.epsInsideSqrt ? 1 : 0,
      nRows: select == null ? -1 : select.rows.length,
      d: param.shape.length === 2 ? param.shape[1]! : 0,
      rows: select?.rows ?? EMPTY,
      slots: select?.slots ?? EMPTY,
    },
  }),
  finish: (outputs) => tf.dispose(outputs),
  fallback: adagradFallback,
  canRunNative: canRunInPlace,
});

function validate({ param, grad, acc, hp, select }: AdagradArgs): void {
  checkShapeOfParam('lazyAdagradUpdate', param, { grad });
  checkFloat32('lazyAdagradUpdate', { param, grad, acc });
  if (select == null) {
    if (!tf.util.arraysEqual(acc.shape, param.shape)) {
      throw new ShapeError(
        `lazyAdagradUpdate: acc has shape [${acc.shape}] but param '${param.name}' has [${param.shape}]`,
      );
    }
  } else {
    if (param.rank !== 2 || acc.rank !== 2 || acc.shape[1] !== param.shape[1]) {
      throw new ShapeError(
        `lazyAdagradUpdate: row-lazy needs a [V, d] param and a [capacity, d] slab, got [${param.shape}] and [${acc.shape}]`,
      );
    }
    const [V] = param.shape as [number, number];
    const cap = acc.shape[0]!;
    if (select.rows.length !== select.slots.length) {
      throw new ShapeError(`lazyAdagradUpdate: ${select.rows.length} rows but ${select.slots.length} slots`);
    }
    for (let k = 0; k < select.rows.length; k++) {
      const r = select.rows[k]!;
      const s = select.slots[k]!;
      if (!(r >= 0 && r < V && s >= 0 && s < cap)) {
        throw new InputError(
          `lazyAdagradUpdate: row ${r} → slot ${s} is out of range (rows [0, ${V}), slots [0, ${cap}))`,
        );
      }
    }
  }
  if (!(Number.isFinite(hp.lr) && hp.lr >= 0)) {
    throw new InputError(`lazyAdagradUpdate: hp.lr = ${hp.lr} is invalid: it must be a finite number ≥ 0`);
  }
  if (!(Number.isFinite(hp.eps) && hp.eps > 0)) {
    throw new InputError(`lazyAdagradUpdate: hp.eps = ${hp.eps} is invalid: it must be a finite number > 0`);
  }
}

/**
 * One Adagrad step (torch semantics; Keras eps placement with `epsInsideSqrt`), in place:
 *   acc ← acc + g²;  p ← p − lr·g/(√acc + eps).
 * With `select`, only the listed rows of p (and their slab rows of acc) are read and written. Native (cpu, wasm):
 * in place, no temporary. Elsewhere or when a buffer is shared: tfjs ops + `assign`.
 */
export function lazyAdagradUpdate(args: AdagradArgs, options?: { impl?: 'auto' | 'fallback' }): void {
  validate(args);
  if (args.param.size === 0) return;
  lazyAdagradKernel.run(args, options);
}
