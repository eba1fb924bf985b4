import type { OptimizerState } from '@kstar/core';
import { dequantizeBlockwise } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { dequantizeTensor, type LazyAdagradPlugin, lazyAdagrad, quantizedBytes } from '../src/index.ts';
import { measuredUniqueBytes, randn, rng } from './helpers.ts';

/** Four groups `g0`…`g3`, each a [48, 40] matrix (7.5 blocks: a tail) and a [40] vector. */
export const GROUPS = 4;
export const SHAPES: [string, number[]][] = [];
for (let k = 0; k < GROUPS; k++) SHAPES.push([`g${k}.w`, [48, 40]], [`g${k}.b`, [40]]);

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** The float32 accumulator of a state, dequantized if it is stored 8-bit. */
export function accOf(
  state: OptimizerState,
  shape: number[],
  encoding: 'sqrt' | 'linear' | 'dynamic' = 'sqrt',
): Float32Array {
  if (state.acc != null) return Float32Array.from(state.acc.dataSync());
  const q = { codes: state.accCodes as tf.Tensor1D, absmax: state.accAbsmax as tf.Tensor1D };
  const t =
    encoding === 'dynamic'
      ? dequantizeBlockwise(q, shape, { signed: false, blockSize: 256 })
      : dequantizeTensor(q, shape);
  const out = Float32Array.from(t.dataSync(), (v) => (encoding === 'sqrt' ? v * v : v));
  t.dispose();
  return out;
}

export interface WindowRun {
  window: number | null;
  encoding: 'sqrt' | 'linear' | 'dynamic';
  /** Worst |acc_w − acc| / acc over elements with acc > 0 (the small elements of a block are the hard case). */
  accRelErr: number;
  /** Worst |acc_w − acc| / (max |acc| of the element's 256-block), over elements and steps. */
  accErrInBlockMax: number;
  /** Worst |p_w − p_exact| over elements, at the end. */
  paramAbsErr: number;
  /** Worst |p_w − p_exact| / RMS(p_exact − p_0) (relative to how far training moved the parameters). */
  paramRelErr: number;
  /** Measured state bytes after the last step, and the prediction from the window's groups. */
  stateBytes: number;
  predictedBytes: number;
  evictions: number;
}

/**
 * Runs windowed Lazy Adagrad (window K) beside exact Adagrad (window off) for `steps` steps on random gradients,
 * updating groups last to first each step as the segmented engine's backward pass does.
 */
export function runWindowed(
  K: number | null,
  steps: number,
  lr = 0.01,
  seed = 7,
  windowEncoding: 'sqrt' | 'linear' | 'dynamic' = 'sqrt',
): WindowRun {
  const next = rng(seed);
  const mk = (tag: string) =>
    Object.fromEntries(
      SHAPES.map(([name, shape]) => [
        name,
        tf.tidy(() =>
          tf.variable(
            tf.tensor(randn(rng(numel(shape) + name.length), numel(shape)), shape),
            true,
            `${tag}/${name}`,
          ),
        ),
      ]),
    ) as Record<string, tf.Variable>;
  const tag = `win${K}-${seed}-${windowEncoding}`;
  const pw = mk(`${tag}-w`);
  const pe = mk(`${tag}-e`);
  const p0 = Object.fromEntries(SHAPES.map(([n]) => [n, Float32Array.from(pe[n]!.dataSync())]));
  const windowed: LazyAdagradPlugin = lazyAdagrad({ lr, window: K, lazyRows: 'off', windowEncoding });
  const exact = lazyAdagrad({ lr, lazyRows: 'off' });
  const sw: Record<string, OptimizerState> = {};
  const se: Record<string, OptimizerState> = {};
  for (const [name, shape] of SHAPES) {
    sw[name] = windowed.init({ name, shape, role: shape.length === 2 ? 'matrix' : 'vector' });
    se[name] = exact.init({ name, shape, role: shape.length === 2 ? 'matrix' : 'vector' });
  }
  // Per-element gradient scales spanning 3 decades: accumulators of one block differ widely (the hard case).
  const scales = Object.fromEntries(
    SHAPES.map(([name, shape]) => [
      name,
      Float32Array.from({ length: numel(shape) }, () => 10 ** (-3 * next())),
    ]),
  );
  let accErr = 0;
  let accRel = 0;
  for (let t = 1; t <= steps; t++) {
    for (let k = GROUPS - 1; k >= 0; k--) {
      for (const [name, shape] of SHAPES.filter(([n]) => n.startsWith(`g${k}.`))) {
        const g = randn(next, numel(shape));
        const s = scales[name]!;
        for (let i = 0; i < g.length; i++) g[i] = g[i]! * s[i]!;
        const gt = tf.tensor(g, shape);
        windowed.update(pw[name]!, gt, sw[name]!, t);
        exact.update(pe[name]!, gt, se[name]!, t);
        gt.dispose();
      }
    }
    for (const [name, shape] of SHAPES) {
      const a = accOf(sw[name]!, shape, windowEncoding);
      const e = accOf(se[name]!, shape);
      for (let b = 0; b * 256 < e.length; b++) {
        let m = 0;
        const end = Math.min(e.length, (b + 1) * 256);
        for (let i = b * 256; i < end; i++) m = Math.max(m, e[i]!);
        for (let i = b * 256; i < end; i++) {
          accErr = Math.max(accErr, Math.abs(a[i]! - e[i]!) / m);
          if (e[i]! > 0) accRel = Math.max(accRel, Math.abs(a[i]! - e[i]!) / e[i]!);
        }
      }
    }
  }
  let paramAbsErr = 0;
  let moved = 0;
  let count = 0;
  for (const [name] of SHAPES) {
    const a = pw[name]!.dataSync();
    const e = pe[name]!.dataSync();
    for (let i = 0; i < e.length; i++) {
      paramAbsErr = Math.max(paramAbsErr, Math.abs(a[i]! - e[i]!));
      moved += (e[i]! - p0[name]![i]!) ** 2;
      count++;
    }
  }
  const inWindow = new Set(windowed.windowGroups());
  let predictedBytes = 0;
  for (const [name, shape] of SHAPES) {
    const g = windowed.groupOf(name);
    predictedBytes += K == null || inWindow.has(g) ? 4 * numel(shape) : quantizedBytes(numel(shape));
  }
  const stateBytes = measuredUniqueBytes(Object.values(sw).flatMap((s) => Object.values(s)));
  for (const s of [...Object.values(sw), ...Object.values(se)]) tf.dispose(Object.values(s));
  tf.dispose([...Object.values(pw), ...Object.values(pe)]);
  return {
    window: K,
    encoding: windowEncoding,
    accRelErr: accRel,
    accErrInBlockMax: accErr,
    paramAbsErr,
    paramRelErr: paramAbsErr / Math.sqrt(moved / count),
    stateBytes,
    predictedBytes,
    evictions: steps * GROUPS, // upper bound on the quantizations an element went through
  };
}
