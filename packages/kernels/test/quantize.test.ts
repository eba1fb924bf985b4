import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  createDynamicMap,
  dequantizeArray,
  dequantizeBlockwise,
  dynamicMap,
  quantizeArray,
  quantizeBlockwise,
  quantizedBytes,
  selectBackend,
} from '../src/index.ts';
import { kernelTestBackends, rng } from './helpers.ts';

const backends = kernelTestBackends('the WebGPU quantize kernels were NOT tested');

const golden = JSON.parse(
  readFileSync(new URL('../../../fixtures/golden/optimizers.json', import.meta.url), 'utf8'),
) as { quantization_maps: { dynamic_signed: number[]; dynamic_unsigned: number[] } };

/** Normal-ish samples with a few large outliers, as optimizer states look; `positive` for v-like data. */
function sample(n: number, seed: number, positive: boolean): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const z =
      (r() + r() + r() + r() - 2) * Math.sqrt(3) * (r() < 0.01 ? 50 : 1) * 10 ** Math.floor(r() * 4 - 2);
    out[i] = positive ? z * z : z;
  }
  return out;
}

/**
 * Float64 reference bound for one element: with v = x/absmax (float64), the two code-book entries around v; the
 * nearest of them is within half their gap, so |x − deq| ≤ gap/2 · absmax (+ float32 rounding of v and of deq).
 */
function halfGapBound(code: Float32Array, x: number, absmax: number): number {
  if (absmax === 0) return 0;
  const v = x / absmax;
  let hi = 0;
  while (hi < 255 && code[hi]! < v) hi++;
  const lo = Math.max(0, hi - 1);
  // Beyond the ends (v < −0.99296874 with the signed map): the end code, |v − code[0]| away.
  const half = v <= code[0]! ? code[0]! - v : v >= code[255]! ? v - code[255]! : (code[hi]! - code[lo]!) / 2;
  return half * absmax + 2 ** -23 * absmax + 2 ** -23 * Math.abs(x);
}

describe('dynamic maps', () => {
  it('equal bitsandbytes create_dynamic_map(signed=True/False) exactly (golden file)', () => {
    for (const [signed, ref] of [
      [true, golden.quantization_maps.dynamic_signed],
      [false, golden.quantization_maps.dynamic_unsigned],
    ] as const) {
      const map = createDynamicMap(signed);
      expect(map.length).toBe(256);
      let mismatches = 0;
      for (let i = 0; i < 256; i++) if (map[i] !== Math.fround(ref[i]!)) mismatches++;
      expect(mismatches).toBe(0);
      expect(Array.from(dynamicMap(signed))).toEqual(Array.from(map));
    }
    const s = dynamicMap(true);
    expect(s[127]).toBe(0);
    expect(s[255]).toBe(1);
    expect(s[0]).toBe(Math.fround(-0.99296874));
    expect(dynamicMap(false)[0]).toBe(0);
    expect(dynamicMap(false)[255]).toBe(1);
    expect(quantizedBytes(1000)).toBe(4 * 250 + 4 * 4);
  });
});

describe.each(backends)('quantize / dequantize on %s', (backend) => {
  it('random tensors (tails included): within half a code gap × absmax of a float64 reference; native = fallback = JS', async () => {
    await selectBackend(backend);
    const start = tf.memory().numTensors;
    const report: string[] = [];
    for (const signed of [true, false]) {
      const code = dynamicMap(signed);
      for (const [n, blockSize] of [
        [1, 256],
        [255, 256],
        [256, 256],
        [257, 256],
        [1000, 256],
        [4099, 256],
        [1000, 64],
        [999, 100],
      ] as const) {
        const x = sample(n, n * 31 + blockSize + (signed ? 1 : 0), !signed);
        const xt = tf.tensor1d(x);
        const q = quantizeBlockwise(xt, { signed, blockSize });
        const qf = quantizeBlockwise(xt, { signed, blockSize, impl: 'fallback' });
        expect(q.codes.shape).toEqual([Math.ceil(n / 4)]);
        expect(q.absmax.shape).toEqual([Math.ceil(n / blockSize)]);
        // The plain-JS quantizer is the cpu kernel's code; the fallback is tfjs ops: all must agree exactly
        // (same float32 division, same midpoint test), except webgpu, whose division may differ by an ulp.
        const refCodes = new Int32Array(Math.ceil(n / 4));
        const refAbsmax = new Float32Array(Math.ceil(n / blockSize));
        quantizeArray(x, signed, blockSize, refCodes, refAbsmax);
        const codes = (await q.codes.data()) as Int32Array;
        const absmax = (await q.absmax.data()) as Float32Array;
        expect(Array.from(absmax)).toEqual(Array.from(refAbsmax));
        expect(Array.from(await qf.absmax.data())).toEqual(Array.from(refAbsmax));
        const differing = (a: ArrayLike<number>) => {
          let d = 0;
          for (let i = 0; i < n; i++) {
            const ca = (a[i >> 2]! >>> (8 * (i & 3))) & 255;
            const cr = (refCodes[i >> 2]! >>> (8 * (i & 3))) & 255;
            if (ca !== cr) {
              expect(Math.abs(ca - cr)).toBe(1);
              d++;
            }
          }
          return d;
        };
        const dNative = differing(codes);
        const dFallback = differing((await qf.codes.data()) as Int32Array);
        if (backend === 'webgpu') {
          expect(dNative).toBeLessThanOrEqual(Math.ceil(n * 1e-3));
          expect(dFallback).toBeLessThanOrEqual(Math.ceil(n * 1e-3));
        } else {
          expect(dNative).toBe(0);
          expect(dFallback).toBe(0);
        }
        const dn = dequantizeBlockwise(q, [n], { signed, blockSize });
        const deq = (await dn.data()) as Float32Array;
        const dt = dequantizeBlockwise(q, [n], { signed, blockSize, impl: 'fallback' });
        const deqF = (await dt.data()) as Float32Array;
        const deqJs = new Float32Array(n);
        dequantizeArray(codes, absmax, signed, blockSize, deqJs);
        let worst = 0;
        for (let i = 0; i < n; i++) {
          const a = absmax[Math.floor(i / blockSize)]!;
          const err = Math.abs(deq[i]! - x[i]!);
          const bound = halfGapBound(code, x[i]!, a);
          if (!(err <= bound)) {
            throw new Error(
              `n ${n} B ${blockSize} signed ${signed}: element ${i} x ${x[i]} deq ${deq[i]} err ${err} > ${bound}`,
            );
          }
          worst = Math.max(worst, bound > 0 ? err / bound : 0);
          expect(deqF[i]).toBe(deq[i]);
          expect(deqJs[i]).toBe(deq[i]);
        }
        report.push(
          `${signed ? 's' : 'u'} n=${n} B=${blockSize}: worst err/bound ${worst.toFixed(3)}, codes ≠ JS: ${dNative}/${dFallback}`,
        );
        tf.dispose([xt, q.codes, q.absmax, qf.codes, qf.absmax, dn, dt]);
      }
    }
    console.log(`[kernels] quantize ${backend}: ${report.join('; ')}`);
    expect(tf.memory().numTensors).toBe(start);
  });

  it('special blocks: zeros → zero codes and exact 0; ±Inf or NaN → absmax Inf/NaN and an all-NaN block', async () => {
    await selectBackend(backend);
    const start = tf.memory().numTensors;
    const B = 8;
    // block 0 zeros, block 1 normal, block 2 holds +Inf, block 3 holds NaN (and −Inf), block 4 a 3-element tail
    const x = new Float32Array([
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      1,
      -0.5,
      0.25,
      0,
      2,
      -2,
      1e-3,
      0.1,
      1,
      Number.POSITIVE_INFINITY,
      3,
      0,
      0,
      0,
      0,
      0,
      1,
      Number.NEGATIVE_INFINITY,
      Number.NaN,
      0,
      0,
      0,
      0,
      0,
      -4,
      0,
      4,
    ]);
    for (const impl of ['auto', 'fallback'] as const) {
      for (const signed of [true, false]) {
        const xs = signed ? x : x.map(Math.abs);
        const xt = tf.tensor1d(xs);
        const q = quantizeBlockwise(xt, { signed, blockSize: B, impl });
        const absmax = Array.from(await q.absmax.data());
        expect(absmax.slice(0, 2)).toEqual([0, 2]);
        expect(absmax[2]).toBe(Number.POSITIVE_INFINITY);
        expect(absmax[3]).toBeNaN();
        expect(absmax[4]).toBe(4);
        const codes = (await q.codes.data()) as Int32Array;
        const zero = signed ? 127 : 0;
        for (const i of [0, 7, 16, 17, 18, 24, 25, 26])
          expect((codes[i >> 2]! >>> (8 * (i & 3))) & 255).toBe(zero);
        const d = dequantizeBlockwise(q, [x.length], { signed, blockSize: B, impl });
        const out = Array.from(await d.data());
        expect(out.slice(0, 8)).toEqual(new Array(8).fill(0));
        expect(out[12]).toBe(2);
        expect(out[13]).toBe(signed ? -Math.fround(0.99296874) * 2 : 2);
        for (let i = 16; i < 32; i++) expect(out[i]).toBeNaN();
        expect(out.slice(32)).toEqual(signed ? [-Math.fround(0.99296874) * 4, 0, 4] : [4, 0, 4]);
        tf.dispose([xt, q.codes, q.absmax, d]);
      }
    }
    expect(tf.memory().numTensors).toBe(start);
  });
});
