import { dynamicMap, selectBackend, shutdownWebGPU } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { compress, fromBf16Bits, toBf16Bits } from '../src/index.ts';

/** Deterministic float64 data with a wide dynamic range (a sign, a mantissa, an exponent over ±8 decades of 2). */
function data(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++)
    out[i] = (rnd() < 0.5 ? -1 : 1) * (0.5 + rnd()) * 2 ** Math.floor(16 * rnd() - 8);
  return out;
}

// WebGPU (lavapipe in CI): encoding must not read back to the host (Node's WebGPU has no synchronous read).
const skipWebGPU = process.env.KSTAR_SKIP_WEBGPU === '1';
if (skipWebGPU) console.warn('KSTAR_SKIP_WEBGPU=1: the act-compress codecs were NOT tested on WebGPU');
afterAll(() => {
  shutdownWebGPU();
});

describe.each(['cpu', 'wasm', ...(skipWebGPU ? [] : (['webgpu'] as const))] as const)(
  'act-compress codecs on %s',
  (backend) => {
    it('bf16: round trip within 2^-8 relative of the float64 values; bytes = 4·⌈n/2⌉ = what tfjs holds', async () => {
      await selectBackend(backend);
      const shape = [2, 37, 13]; // odd size: the last word holds one value
      const n = 2 * 37 * 13;
      const x64 = data(n, 7);
      const x = tf.tensor(Float32Array.from(x64), shape);
      const { codec } = compress({ format: 'bf16' });
      const start = tf.memory();
      const saved = codec.encode(x);
      expect(tf.memory().numTensors - start.numTensors).toBe(1);
      expect(tf.memory().numBytes - start.numBytes).toBe(saved.bytes);
      expect(saved.bytes).toBe(codec.savedBytes(shape));
      expect(saved.bytes).toBe(4 * Math.ceil(n / 2));
      const y = saved.decode();
      expect(y.shape).toEqual(shape);
      const yd = await y.data();
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(yd[i]! - x64[i]!) / Math.abs(x64[i]!));
      expect(worst).toBeLessThanOrEqual(2 ** -8);
      expect(worst).toBeGreaterThan(0); // it did round
      tf.dispose([x, y]);
      saved.dispose();
      expect(tf.memory().numTensors).toBe(start.numTensors - 1);
    });

    it('int8: round trip within half the widest step of the dynamic map × the block absmax; bytes match', async () => {
      await selectBackend(backend);
      const shape = [3, 29, 11];
      const n = 3 * 29 * 11;
      const blockSize = 64;
      const x64 = data(n, 11);
      const x32 = Float32Array.from(x64);
      const x = tf.tensor(x32, shape);
      const { codec } = compress({ format: 'int8', blockSize });
      const start = tf.memory();
      const saved = codec.encode(x);
      expect(tf.memory().numTensors - start.numTensors).toBe(2);
      expect(tf.memory().numBytes - start.numBytes).toBe(saved.bytes);
      expect(saved.bytes).toBe(codec.savedBytes(shape));
      expect(saved.bytes).toBe(4 * Math.ceil(n / 4) + 4 * Math.ceil(n / blockSize));
      const map = [...dynamicMap(true)].sort((a, b) => a - b);
      let halfStep = 0;
      for (let i = 1; i < map.length; i++) halfStep = Math.max(halfStep, (map[i]! - map[i - 1]!) / 2);
      const y = saved.decode();
      const yd = await y.data();
      let worst = 0;
      for (let b0 = 0; b0 < n; b0 += blockSize) {
        let absmax = 0;
        for (let i = b0; i < Math.min(n, b0 + blockSize); i++) absmax = Math.max(absmax, Math.abs(x32[i]!));
        for (let i = b0; i < Math.min(n, b0 + blockSize); i++) {
          worst = Math.max(worst, Math.abs(yd[i]! - x64[i]!) / (halfStep * absmax));
        }
      }
      expect(worst).toBeLessThanOrEqual(1 + 1e-5);
      tf.dispose([x, y]);
      saved.dispose();
      expect(tf.memory().numTensors).toBe(start.numTensors - 1);
    });
  },
);

describe('bf16 bits', () => {
  it('rounds to nearest even and keeps NaN, ±Inf and signed zero', () => {
    const f = new Float32Array([
      1 + 2 ** -8,
      1 + 3 * 2 ** -8,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      -0,
      -1.5,
    ]);
    const back = fromBf16Bits(toBf16Bits(f));
    expect(back[0]).toBe(1); // tie → even (mantissa 0)
    expect(back[1]).toBe(1 + 2 ** -6); // tie → even (rounds up)
    expect(Number.isNaN(back[2]!)).toBe(true);
    expect(back[3]).toBe(Number.POSITIVE_INFINITY);
    expect(Object.is(back[4], -0)).toBe(true);
    expect(back[5]).toBe(-1.5);
  });

  it('rejects a bad format or block size with an InputError naming it', () => {
    expect(() => compress({ format: 'fp8' as 'bf16' })).toThrow(/format 'fp8'/);
    expect(() => compress({ format: 'int8', blockSize: 0 })).toThrow(/blockSize 0/);
  });
});
