import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { callUntyped } from '../../../testkit/src/option-checks.ts';
import { packArray, packedLength, packInts, selectBackend, unpackArray, unpackInts } from '../src/index.ts';
import { kernelTestBackends, rng } from './helpers.ts';

const backends = kernelTestBackends('the WebGPU pack kernels were NOT tested');

/** Random integers in [0, 2^bits), with the extremes forced in so the sign bit of each slot is exercised. */
function randomInts(n: number, bits: 8 | 16, seed: number): Int32Array {
  const r = rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 2 ** bits);
  if (n > 0) out[0] = 2 ** bits - 1;
  if (n > 1) out[n - 1] = 2 ** (bits - 1);
  return out;
}

/** Independent reference: bytes of a little-endian Uint8Array/Uint16Array viewed as int32 words. */
function referencePack(values: Int32Array, bits: 8 | 16): Int32Array {
  const words = packedLength(values.length, bits);
  const buf = new ArrayBuffer(words * 4);
  const view = bits === 8 ? new Uint8Array(buf) : new Uint16Array(buf);
  view.set(values);
  return new Int32Array(buf);
}

describe('pack layout (plain arrays)', () => {
  it('packedLength: ⌈n/4⌉ and ⌈n/2⌉', () => {
    expect([0, 1, 4, 5, 1023].map((n) => packedLength(n, 8))).toEqual([0, 1, 1, 2, 256]);
    expect([0, 1, 2, 3].map((n) => packedLength(n, 16))).toEqual([0, 1, 1, 2]);
  });
  it('packArray equals the little-endian byte view; unpackArray inverts it; low bits kept', () => {
    for (const bits of [8, 16] as const) {
      for (const n of [1, 3, 4, 7, 64, 1001]) {
        const v = randomInts(n, bits, n * bits);
        const p = packArray(v, bits);
        expect(Array.from(p)).toEqual(Array.from(referencePack(v, bits)));
        expect(Array.from(unpackArray(p, n, bits))).toEqual(Array.from(v));
      }
      expect(Array.from(unpackArray(packArray([2 ** bits + 5, -1], bits), 2, bits))).toEqual([
        5,
        2 ** bits - 1,
      ]);
    }
  });
});

describe.each(backends)('pack/unpack kernels on %s', (backend) => {
  it('native = reference (fallback = reference on cpu), every size (tails included), both widths; true bytes; no leaks', async () => {
    await selectBackend(backend);
    const start = tf.memory().numTensors;
    for (const bits of [8, 16] as const) {
      for (const n of [1, 2, 3, 4, 5, 255, 256, 257, 4099]) {
        const v = randomInts(n, bits, 7 * n + bits);
        const want = Array.from(referencePack(v, bits));
        const values = tf.tensor1d(v, 'int32');
        const native = packInts(values, bits);
        const fallback = packInts(values, bits, { impl: 'fallback' });
        expect(native.dtype).toBe('int32');
        expect(native.shape).toEqual([packedLength(n, bits)]);
        // tf.memory counts the packed bytes: 4 per word.
        expect(native.size * 4).toBe(4 * Math.ceil(n / (32 / bits)));
        expect(Array.from(await native.data())).toEqual(want);
        // The ops fallback is exact only where tfjs int32 arithmetic is (cpu, tensorflow): see pack.ts.
        if (backend === 'cpu') expect(Array.from(await fallback.data())).toEqual(want);
        const back = unpackInts(native, n, bits);
        const backFallback = unpackInts(native, n, bits, { impl: 'fallback' });
        expect(Array.from(await back.data())).toEqual(Array.from(v));
        if (backend === 'cpu') expect(Array.from(await backFallback.data())).toEqual(Array.from(v));
        tf.dispose([values, native, fallback, back, backFallback]);
      }
    }
    expect(tf.memory().numTensors).toBe(start);
  });

  it('rejects bad arguments with the field named', async () => {
    await selectBackend(backend);
    const f = tf.tensor1d([1, 2]);
    const i = tf.tensor1d([1, 2], 'int32');
    expect(() => packInts(f, 8)).toThrow(/dtype float32/);
    expect(() => callUntyped((bits: 8 | 16) => packInts(i, bits), 4)).toThrow(/bits = 4/);
    expect(() => unpackInts(i, 9, 8)).toThrow(/n = 9/);
    tf.dispose([f, i]);
  });
});
