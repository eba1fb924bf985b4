import type { OptimizerPlugin, ParamInfo } from '@kstar/core';
import {
  addInPlace,
  dequantizeBlockwise,
  expand24,
  joinArray,
  packArray,
  packInts,
  quantizeBlockwise,
  reconstruct24,
  split24,
  unpackInts,
  writeSlice,
} from '@kstar/kernels';
import { OPTIMIZERS } from '@kstar/trainer/internal';
import * as tf from '@tensorflow/tfjs';

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

/** max |a − b| over two arrays (0 when equal). */
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = a.length === b.length ? 0 : Number.POSITIVE_INFINITY;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * The storage and accumulation kernels (pack, unpack, 8-bit quantize/dequantize, split24 join/expand, add in place,
 * slice write) on the backend: pack/unpack against the host reference, the others against their tfjs-ops fallback on
 * the same backend, which must agree exactly (or to float32 rounding for dequantize).
 */
export async function storageKernelParity(n = 1 << 20): Promise<OptimizerParityRow[]> {
  const rows: OptimizerParityRow[] = [];
  const row = (kernel: string, shape: number[], err: number, tolerance: number) =>
    rows.push({ kernel, role: 'other', shape, steps: 0, relError: err, tolerance, pass: err <= tolerance });
  const x = values(n + 3, 5, 2); // odd length: partial words and a partial quantization block
  const ints = Int32Array.from(x, (v) => Math.floor((v + 2) * 1000) % 65536);
  const both = async (
    f: (impl: 'auto' | 'fallback') => tf.Tensor,
  ): Promise<[Float32Array | Int32Array, Float32Array | Int32Array]> => {
    const out: (Float32Array | Int32Array)[] = [];
    for (const impl of ['auto', 'fallback'] as const) {
      const t = f(impl);
      out.push((await t.data()) as Float32Array | Int32Array);
      t.dispose();
    }
    return [out[0]!, out[1]!];
  };
  // Pack/unpack: against the host reference (their tfjs-ops fallback is exact only on cpu and tfjs-node, see pack.ts).
  for (const bits of [8, 16] as const) {
    const vals = ints.map((i) => i % 2 ** bits);
    const v = tf.tensor1d(vals, 'int32');
    const packed = packInts(v, bits);
    row(
      `KstarPack (${bits}-bit) vs host packArray`,
      [v.size],
      maxAbsDiff(await packed.data(), packArray(vals, bits)),
      0,
    );
    const back = unpackInts(packed, v.size, bits);
    row(`KstarUnpack (${bits}-bit) vs the packed values`, [v.size], maxAbsDiff(await back.data(), vals), 0);
    tf.dispose([v, packed, back]);
  }
  const xt = tf.tensor1d(x);
  for (const signed of [true, false]) {
    const src = signed ? xt : tf.abs(xt);
    const qa = quantizeBlockwise(src, { signed });
    const qb = quantizeBlockwise(src, { signed, impl: 'fallback' });
    const codesDiff = maxAbsDiff(
      (await qa.codes.data()) as Int32Array,
      (await qb.codes.data()) as Int32Array,
    );
    const absDiff = maxAbsDiff(
      (await qa.absmax.data()) as Float32Array,
      (await qb.absmax.data()) as Float32Array,
    );
    row(
      `KstarQuantize8 (${signed ? 'signed' : 'unsigned'}: codes, absmax)`,
      [src.size],
      codesDiff + absDiff,
      0,
    );
    const [e, f] = await both((impl) => dequantizeBlockwise(qa, [src.size], { signed, impl }));
    row(`KstarDequantize8 (${signed ? 'signed' : 'unsigned'})`, [src.size], maxAbsDiff(e, f), 1e-6);
    tf.dispose([qa.codes, qa.absmax, qb.codes, qb.absmax]);
    if (!signed) src.dispose();
  }
  const parts = split24(xt);
  {
    const [a, b] = await both((impl) => reconstruct24(parts.hi, parts.lo, xt.size, { impl }));
    row('KstarJoin24 (reconstruct)', [xt.size], maxAbsDiff(a, b), 0);
    const [c, d] = await both((impl) => expand24(parts.hi, xt.size, { impl }));
    row('KstarJoin24 (expand)', [xt.size], maxAbsDiff(c, d), 0);
  }
  tf.dispose([parts.hi, parts.lo]);
  {
    const g = tf.tensor1d(values(n + 3, 9, 1));
    const sums: Float32Array[] = [];
    for (const impl of ['auto', 'fallback'] as const) {
      const acc = tf.tidy(() => tf.add(xt, 0)); // a buffer the accumulator may own
      const out = addInPlace(acc, g, { impl });
      sums.push((await out.data()) as Float32Array);
      tf.dispose([acc, out]);
    }
    row('KstarAddInPlace', [xt.size], maxAbsDiff(sums[0]!, sums[1]!), 0);
    const src = tf.tensor1d(values(4099, 13, 1));
    const written: Float32Array[] = [];
    for (const impl of ['auto', 'fallback'] as const) {
      const target = tf.tidy(() =>
        tf.variable(tf.add(xt, 0), false, `parity-slice-${impl}-${Math.random()}`),
      );
      writeSlice(target, src, 1001, { impl });
      written.push((await target.data()) as Float32Array);
      target.dispose();
    }
    row('KstarWriteSlice', [xt.size], maxAbsDiff(written[0]!, written[1]!), 0);
    tf.dispose([g, src]);
  }
  xt.dispose();
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
