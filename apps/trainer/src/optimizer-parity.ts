import type { OptimizerPlugin, ParamInfo } from '@kstar/core';
import { joinArray, split24 } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { OPTIMIZERS } from './optimizers.ts';

/**
 * Cross-backend parity of every optimizer's update kernel and of the split24 kernel: the same parameters and
 * gradients are updated for a few steps on the backend under test (its native kernels, e.g. WGSL on WebGPU) and on
 * the cpu backend (whose kernels CI holds to the tfjs-ops fallback and to float64 references). The error is
 * max|p − p_cpu| / RMS(p_cpu − p0): relative to the size of the update, the quantity a wrong kernel gets wrong.
 */
export interface OptimizerParityRow {
  kernel: string;
  role: ParamInfo['role'];
  shape: number[];
  steps: number;
  /** max |p_backend − p_cpu| / RMS(p_cpu − p0). */
  relError: number;
  tolerance: number;
  pass: boolean;
}

const PARITY_SHAPES: { role: ParamInfo['role']; shape: number[] }[] = [
  { role: 'matrix', shape: [768, 3072] },
  { role: 'embedding', shape: [4096, 768] },
  { role: 'vector', shape: [3072] },
];

/** Deterministic values in [−scale, scale) (a small LCG; no tfjs randomness, identical on every backend). */
function values(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

async function runUpdates(
  backend: string,
  create: () => OptimizerPlugin,
  role: ParamInfo['role'],
  shape: number[],
  steps: number,
): Promise<Float32Array> {
  await tf.setBackend(backend);
  const n = shape.reduce((a, b) => a * b, 1);
  const opt = create();
  // Made inside tidy so the variable owns its buffer alone: in-place kernels run natively only then.
  const param = tf.tidy(() =>
    tf.variable(tf.tensor(values(n, 7, 0.05), shape), true, `parity-${backend}-${Math.random()}`),
  );
  const state = opt.init({ name: 'p', shape, role });
  for (let step = 1; step <= steps; step++) {
    const g = values(n, 100 + step, 0.01);
    // Embedding-like weights: every third row untouched this step (exercises lazy rows).
    if (role === 'embedding') {
      const cols = shape[1]!;
      for (let r = step % 3; r < shape[0]!; r += 3) g.fill(0, r * cols, (r + 1) * cols);
    }
    const grad = tf.tensor(g, shape);
    opt.update(param, grad, state, step);
    grad.dispose();
  }
  const out = (await param.data()) as Float32Array;
  param.dispose();
  tf.dispose(Object.values(state));
  return out;
}

export async function optimizerParity(backend: string, steps = 3): Promise<OptimizerParityRow[]> {
  const rows: OptimizerParityRow[] = [];
  for (const [name, entry] of Object.entries(OPTIMIZERS)) {
    const create = () => entry.create(entry.defaultLr, {});
    for (const { role, shape } of PARITY_SHAPES) {
      const p0 = values(
        shape.reduce((a, b) => a * b, 1),
        7,
        0.05,
      );
      const mine = await runUpdates(backend, create, role, shape, steps);
      const ref = await runUpdates('cpu', create, role, shape, steps);
      let maxDiff = 0;
      let sq = 0;
      for (let i = 0; i < ref.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(mine[i]! - ref[i]!));
        sq += (ref[i]! - p0[i]!) ** 2;
      }
      const relError = maxDiff / Math.sqrt(sq / ref.length);
      // 8-bit state: one code flipped at a rounding boundary moves an element by a code gap.
      const tolerance = name === 'adam8bit' || name === 'lazy-adagrad' ? 5e-2 : 1e-3;
      rows.push({
        kernel: `optimizer:${name}`,
        role,
        shape,
        steps,
        relError,
        tolerance,
        pass: relError <= tolerance,
      });
    }
  }
  // split24: the packed words must be bit-identical, and the reconstruction equal.
  for (const n of [768 * 3072 + 3, 1001]) {
    const w = values(n, 11, 3);
    const words: Int32Array[][] = [];
    for (const b of [backend, 'cpu']) {
      await tf.setBackend(b);
      const x = tf.tensor1d(w);
      const parts = split24(x);
      words.push([(await parts.hi.data()) as Int32Array, (await parts.lo.data()) as Int32Array]);
      tf.dispose([x, parts.hi, parts.lo]);
    }
    let mismatches = 0;
    for (let k = 0; k < 2; k++)
      for (let i = 0; i < words[0]![k]!.length; i++) if (words[0]![k]![i] !== words[1]![k]![i]) mismatches++;
    const bits = new Uint32Array(n);
    joinArray(words[0]![0]!, words[0]![1]!, n, bits);
    const back = new Float32Array(bits.buffer);
    let rel = 0;
    for (let i = 0; i < n; i++)
      rel = Math.max(rel, Math.abs(back[i]! - w[i]!) / Math.max(Math.abs(w[i]!), 1e-30));
    rows.push({
      kernel: 'split24 (mismatched words; then max rel. reconstruct error)',
      role: 'other',
      shape: [n],
      steps: 0,
      relError: mismatches + rel,
      tolerance: 2 ** -15,
      pass: mismatches === 0 && rel <= 2 ** -15,
    });
  }
  await tf.setBackend(backend);
  return rows;
}

export function formatOptimizerParity(rows: OptimizerParityRow[]): string {
  return rows
    .map(
      (r) =>
        `${r.pass ? 'PASS' : 'FAIL'} ${r.kernel} ${r.role} [${r.shape.join('×')}] err ${r.relError.toExponential(2)} (tol ${r.tolerance.toExponential(0)})`,
    )
    .join('\n');
}
