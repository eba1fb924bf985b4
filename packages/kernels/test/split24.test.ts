import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  expand24,
  joinArray,
  joinValue,
  packedLength,
  reconstruct24,
  SPLIT24_SATURATE_BITS,
  selectBackend,
  split24,
  split24Bytes,
  splitArray,
  splitValue,
} from '../src/index.ts';
import { kernelTestBackends, rng } from './helpers.ts';

const backends = kernelTestBackends('the WebGPU split24 kernels were NOT tested');

const MIN_NORMAL = 2 ** -126;
const fromBits = (b: number) => new Float32Array(new Uint32Array([b >>> 0]).buffer)[0]!;
const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** Independent float64 reference of bf16 round-to-nearest-even (8 significant bits; subnormal spacing 2^−133). */
function bf16Reference(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  const e = Math.max(Math.floor(Math.log2(a)), -126);
  let ulp = 2 ** (e - 7);
  if (a / ulp >= 256) ulp *= 2; // log2 rounded up to the next binade
  if (a / ulp < 128 && e > -126) ulp /= 2;
  const q = a / ulp;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q) - 0.5) === 0)
    r = Math.trunc(q) % 2 === 0 ? Math.trunc(q) : Math.trunc(q) + 1;
  return Math.sign(x) * r * ulp;
}

/** Values that probe every case: signed zeros, subnormals, rounding boundaries of every kind, large, Inf, NaN. */
function probeValues(): Float32Array {
  const out: number[] = [0, -0, 1, -1, 1.9999998807907104, 2 ** -149, -(2 ** -149), 2 ** -133, MIN_NORMAL];
  out.push(1e38, -3.3e38, 3.3895e38, fromBits(SPLIT24_SATURATE_BITS - 1), Infinity, -Infinity, Number.NaN);
  // Every low-16-bit pattern around bf16 boundaries at a few exponents (mantissa high bits 0, 1 and 127), incl.
  // the subnormal range (biased exponent 0) and the largest binade before saturation.
  for (const e of [0, 1, 100, 127, 200, 254]) {
    for (const m7 of [0, 1, 127]) {
      for (let low = 0; low < 65536; low += e === 127 ? 1 : 97) {
        const bits = (e << 23) | (m7 << 16) | low;
        out.push(fromBits(bits), -fromBits(bits));
      }
    }
  }
  const r = rng(5);
  for (let i = 0; i < 2000; i++) out.push((r() * 2 - 1) * 10 ** Math.floor(r() * 12 - 8));
  return new Float32Array(out);
}

describe('split24 encoding (plain numbers, float64 reference)', () => {
  const xs = probeValues();

  it('expand = bf16 round-to-nearest-even of w (independent reference), Inf and NaN documented', () => {
    const bad: number[] = [];
    for (const x of xs) {
      const { hi } = splitValue(x);
      const e = joinValue(hi, 0);
      const ok = Number.isNaN(x)
        ? Number.isNaN(e)
        : Number.isFinite(x) && Math.abs(x) >= fromBits(SPLIT24_SATURATE_BITS)
          ? Math.abs(e) === fromBits(0x7f7f0000)
          : Object.is(e, bf16Reference(x));
      if (!ok) bad.push(x);
    }
    expect(bad.slice(0, 5)).toEqual([]);
    expect(joinValue(splitValue(Infinity).hi, 0)).toBe(Infinity);
    expect(joinValue(splitValue(-Infinity).hi, 0)).toBe(-Infinity);
  });

  it('reconstruct error ≤ 2^−15·max(|w|, 2^−126) for every finite |w| below the bf16 overflow threshold', () => {
    let worst = 0;
    let maxRho = 0;
    for (const x of xs) {
      if (!Number.isFinite(x) || Math.abs(x) >= fromBits(SPLIT24_SATURATE_BITS)) continue;
      const { hi, rho } = splitValue(x);
      maxRho = Math.max(maxRho, Math.abs(rho));
      const err = Math.abs(joinValue(hi, rho) - x) / Math.max(Math.abs(x), MIN_NORMAL);
      worst = Math.max(worst, err);
    }
    expect(maxRho).toBe(127);
    expect(worst).toBeLessThanOrEqual(2 ** -15);
    // The proof's tighter bound: 129 float32 ulps ≤ 129·2^−23.
    expect(worst).toBeLessThanOrEqual(129 * 2 ** -23);
    expect(worst).toBeGreaterThan(100 * 2 ** -23); // the probes do reach the worst case
  });

  it('zeros are exact with their sign; Inf exact; NaN stays NaN; the saturated top binade is within 2^−8', () => {
    expect(Object.is(joinValue(splitValue(-0).hi, splitValue(-0).rho), -0)).toBe(true);
    expect(Object.is(joinValue(splitValue(0).hi, splitValue(0).rho), 0)).toBe(true);
    expect(joinValue(splitValue(-Infinity).hi, splitValue(-Infinity).rho)).toBe(-Infinity);
    expect(Number.isNaN(joinValue(splitValue(Number.NaN).hi, splitValue(Number.NaN).rho))).toBe(true);
    const big = fromBits(0x7f7fffff); // FLT_MAX
    const s = splitValue(big);
    expect(Math.abs(joinValue(s.hi, s.rho) - big) / big).toBeLessThanOrEqual(2 ** -8);
  });

  it('split24Bytes: 4⌈n/2⌉ + 4⌈n/4⌉', () => {
    expect([1, 2, 4, 5, 1000].map(split24Bytes)).toEqual([8, 8, 12, 20, 3000]);
  });
});

describe.each(backends)('split24 kernels on %s', (backend) => {
  it('native = array reference bit for bit (fallback too where exact), every tail; no leaks', async () => {
    await selectBackend(backend);
    const start = tf.memory().numTensors;
    const all = probeValues();
    for (const n of [1, 2, 3, 5, 257, all.length]) {
      const w = all.slice(all.length - n); // the tail holds random values, the full array every probe
      const bits = new Uint32Array(w.buffer);
      const hiRef = new Int32Array(packedLength(n, 16));
      const loRef = new Int32Array(packedLength(n, 8));
      splitArray(bits, hiRef, loRef);
      const recRef = new Uint32Array(n);
      const expRef = new Uint32Array(n);
      joinArray(hiRef, loRef, n, recRef);
      joinArray(hiRef, null, n, expRef);

      const wt = tf.tensor1d(w);
      const native = split24(wt);
      expect(Array.from(await native.hi.data())).toEqual(Array.from(hiRef));
      expect(Array.from(await native.lo.data())).toEqual(Array.from(loRef));
      const rec = reconstruct24(native.hi, native.lo, n);
      const exp = expand24(native.hi, n);
      expect(bitsOf((await rec.data()) as Float32Array)).toEqual(Array.from(recRef));
      expect(bitsOf((await exp.data()) as Float32Array)).toEqual(Array.from(expRef));
      tf.dispose([native.hi, native.lo, rec, exp]);

      if (backend !== 'webgpu') {
        // The ops fallback is exact where tfjs keeps subnormals and pow(2, k) is exact (see split24.ts).
        const fb = split24(wt, { impl: 'fallback' });
        expect(Array.from(await fb.hi.data())).toEqual(Array.from(hiRef));
        expect(Array.from(await fb.lo.data())).toEqual(Array.from(loRef));
        const recF = reconstruct24(fb.hi, fb.lo, n, { impl: 'fallback' });
        const expF = expand24(fb.hi, n, { impl: 'fallback' });
        expect(bitsOf((await recF.data()) as Float32Array)).toEqual(Array.from(recRef));
        expect(bitsOf((await expF.data()) as Float32Array)).toEqual(Array.from(expRef));
        tf.dispose([fb.hi, fb.lo, recF, expF]);
      }
      wt.dispose();
    }
    expect(tf.memory().numTensors).toBe(start);
  });

  it('rejects bad arguments with the field named', async () => {
    await selectBackend(backend);
    const i = tf.tensor1d([1, 2], 'int32');
    const f = tf.tensor1d([1, 2]);
    expect(() => split24(i)).toThrow(/dtype int32/);
    expect(() => reconstruct24(i, i, 9)).toThrow(/hi is int32 \[2\], expected int32 \[5\]/);
    expect(() => expand24(f, 2)).toThrow(/hi is float32/);
    tf.dispose([i, f]);
  });
});
