import { onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  dequantizeArray,
  dequantizeTensor,
  QUANT_BLOCK,
  quantizeArray,
  quantizedBytes,
  quantizeTensor,
} from '../src/index.ts';
import { rng } from './helpers.ts';

onBackend('cpu'); // the tensor count is the same after the file as before it

/** Non-negative values spanning 6 decades (accumulator-like), with exact zeros and an all-zero block. */
export function accumulatorLike(n: number, seed: number): Float32Array {
  const next = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = next() < 0.05 ? 0 : 10 ** (-6 * next()) * (1 + next());
  if (n > 2 * QUANT_BLOCK) x.fill(0, QUANT_BLOCK, 2 * QUANT_BLOCK);
  return x;
}

/** Worst |x̂ − x| / (½·absmax/255) over all elements, absmax from a float64 pass over the block. */
function worstInHalfSteps(x: Float32Array, xhat: ArrayLike<number>): number {
  let worst = 0;
  for (let b = 0; b * QUANT_BLOCK < x.length; b++) {
    let m = 0;
    const end = Math.min(x.length, (b + 1) * QUANT_BLOCK);
    for (let i = b * QUANT_BLOCK; i < end; i++) m = Math.max(m, Math.abs(x[i]!));
    for (let i = b * QUANT_BLOCK; i < end; i++) {
      const e = Math.abs(xhat[i]! - x[i]!);
      if (m === 0) expect(e).toBe(0);
      else worst = Math.max(worst, e / ((0.5 * m) / 255));
    }
  }
  return worst;
}

const LENGTHS = [1, 3, 4, 255, 256, 257, 1000, 1027, 4099];

describe('block-wise 8-bit quantization (block 256, absmax, unsigned, 4 codes per int32)', () => {
  it('round trip within half a code step × absmax per element (typed arrays and tfjs ops)', () => {
    const rows: string[] = [];
    for (const n of LENGTHS) {
      const x = accumulatorLike(n, n);
      const q = quantizeArray(x);
      expect(q.codes.length).toBe(Math.ceil(n / 4));
      expect(q.absmax.length).toBe(Math.ceil(n / 256));
      const arrays = worstInHalfSteps(x, dequantizeArray(q, n));
      const xt = tf.tensor(x, [n]);
      const qt = quantizeTensor(xt, 'ops');
      expect(qt.codes.dtype).toBe('int32');
      expect(4 * (qt.codes.size + qt.absmax.size)).toBe(quantizedBytes(n));
      const back = dequantizeTensor(qt, [n], 'ops');
      const ops = worstInHalfSteps(x, back.dataSync());
      // The two implementations agree: codes differ by at most one step (a float32 rounding tie), rarely.
      const codesOps = qt.codes.dataSync() as Int32Array;
      const da = dequantizeArray(q, n);
      const db = dequantizeArray({ codes: codesOps, absmax: q.absmax }, n);
      let differing = 0;
      for (let i = 0; i < n; i++) if (da[i] !== db[i]) differing++;
      rows.push(
        `n=${n}: worst ${arrays.toFixed(4)} (arrays) / ${ops.toFixed(4)} (ops) half-steps, ${differing} codes differ`,
      );
      // 1 half-step + float32 rounding of the decode (relative 2^-23 of absmax ≪ 1/510).
      expect(arrays).toBeLessThanOrEqual(1 + 1e-4);
      expect(ops).toBeLessThanOrEqual(1 + 1e-4);
      expect(differing).toBeLessThanOrEqual(Math.ceil(n / 100));
      tf.dispose([xt, qt.codes, qt.absmax, back]);
    }
    console.log(
      `[optim-lazy-adagrad] quantize round trip (max |x̂−x| in units of ½·absmax/255): ${rows.join('; ')}`,
    );
  });

  it('packing: element 4j+k in byte k of word j (byte 3 stored with its top bit flipped); negatives clamp to 0', () => {
    const x = new Float32Array([0, 1, 2, 255, -3, 255]);
    const q = quantizeArray(x);
    expect(Array.from(q.absmax)).toEqual([255]);
    // Word 0: codes 0, 1, 2, 255 → bytes 0x00, 0x01, 0x02, 0xFF^0x80 = 0x7F.
    expect(q.codes[0]).toBe(0x7f020100);
    // Word 1: codes 0 (−3 clamped), 255, padding 0, padding 0 (byte 3 → 0x80).
    expect(q.codes[1]! >>> 0).toBe(0x8000ff00);
    const xt = tf.tensor(x);
    const ops = quantizeTensor(xt, 'ops');
    expect(Array.from(ops.codes.dataSync())).toEqual(Array.from(q.codes));
    const codes = tf.tensor1d(q.codes, 'int32');
    const absmax = tf.tensor1d(q.absmax);
    const deq = dequantizeTensor({ codes, absmax }, [6], 'ops');
    expect(Array.from(deq.dataSync())).toEqual([0, 1, 2, 255, 0, 255]);
    tf.dispose([xt, ops.codes, ops.absmax, codes, absmax, deq]);
  });
});
