import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { type BackendName, selectBackend, shutdownWebGPU, writeSlice } from '../src/index.ts';

const skipWebGPU = process.env.KSTAR_SKIP_WEBGPU === '1';
const backends: BackendName[] = ['cpu', 'wasm', ...(skipWebGPU ? [] : (['webgpu'] as const))];

afterAll(() => {
  shutdownWebGPU();
});

describe.each(backends)('writeSlice on %s', (backend) => {
  it.each(['float32', 'int32'] as const)(
    'writes %s rows in place (no new buffer, no bytes in tf.profile), equal to a plain JS splice and to the fallback',
    async (dtype) => {
      await selectBackend(backend);
      const start = tf.memory().numTensors;
      for (const [rows, cols, r0, n] of [
        [5, 3, 0, 2],
        [5, 3, 3, 2],
        [64, 33, 17, 9],
      ] as const) {
        const base = Array.from({ length: rows * cols }, (_, i) => i - 7);
        const src = Array.from({ length: n * cols }, (_, i) => 1000 + 3 * i);
        const want = base.slice();
        want.splice(r0 * cols, n * cols, ...src);
        for (const impl of ['auto', 'fallback'] as const) {
          const target = tf.tidy(() => tf.variable(tf.tensor(base, [rows, cols], dtype), false));
          const source = tf.tensor(src, [n, cols], dtype);
          const buffers = tf.memory().numDataBuffers;
          const prof = await tf.profile(() => writeSlice(target, source, r0 * cols, { impl }));
          if (impl === 'auto') {
            expect(tf.memory().numDataBuffers).toBe(buffers);
            expect(prof.peakBytes - tf.memory().numBytes).toBeLessThanOrEqual(0);
          }
          expect(Array.from(await target.data())).toEqual(want);
          tf.dispose([target, source]);
        }
      }
      expect(tf.memory().numTensors).toBe(start);
    },
  );

  it('rejects a slice outside the target or of another dtype', async () => {
    await selectBackend(backend);
    const t = tf.variable(tf.zeros([4, 2]), false);
    const s = tf.ones([2, 2]);
    expect(() => writeSlice(t, s, 5)).toThrow(/inside the target/);
    const si = s.toInt();
    expect(() => writeSlice(t, si, 0)).toThrow(/dtypes must match/);
    tf.dispose([t, s, si]);
  });
});
