import { MemoryLedger } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { addInPlace, type BackendName, selectBackend, shutdownWebGPU } from '../src/index.ts';
import { randomArray } from './helpers.ts';

const skipWebGPU = process.env.KSTAR_SKIP_WEBGPU === '1';
const backends: BackendName[] = ['cpu', 'wasm', ...(skipWebGPU ? [] : (['webgpu'] as const))];

afterAll(() => {
  shutdownWebGPU();
});

describe.each(backends)('on %s', (backend) => {
  it('addInPlace sums into the accumulator without a new buffer, equal to the fallback', async () => {
    await selectBackend(backend);
    for (const n of [1, 7, 1000, 4099]) {
      const a0 = randomArray(n, n);
      const g0 = randomArray(n, n + 1);
      const acc = tf.tensor(a0.slice());
      const g = tf.tensor(g0);
      const buffers = tf.memory().numDataBuffers;
      const out = addInPlace(acc, g);
      expect(out).toBe(acc); // the same tensor: written in place
      expect(tf.memory().numDataBuffers).toBe(buffers);
      const ref = addInPlace(tf.tensor(a0), g, { impl: 'fallback' });
      const got = await acc.data();
      const want = await ref.data();
      for (let i = 0; i < n; i++) expect(got[i]).toBe(want[i]); // one float32 add each: bit-identical
      tf.dispose([acc, g, ref]);
    }
  });

  it('addInPlace leaves a shared buffer alone and allocates instead', async () => {
    await selectBackend(backend);
    const acc = tf.tensor([1, 2, 3]);
    const view = acc.reshape([3]); // shares the buffer (refCount 2)
    const g = tf.tensor([10, 20, 30]);
    const out = addInPlace(acc, g);
    expect(out).not.toBe(acc);
    expect(Array.from(await out.data())).toEqual([11, 22, 33]);
    expect(Array.from(await view.data())).toEqual([1, 2, 3]);
    tf.dispose([acc, view, g, out]);
  });

  it('the memory ledger counts unique buffers: 8,000 bytes for five reshapes plus one add', async () => {
    await selectBackend(backend);
    const ledger = new MemoryLedger();
    const { peakNewBytes } = ledger.measure(() => {
      const x = tf.ones([1000]);
      const rs = [x.reshape([10, 100])];
      for (let i = 0; i < 4; i++) rs.push(rs[i]!.reshape(i % 2 ? [10, 100] : [100, 10]));
      const y = tf.add(rs[4]!, rs[4]!);
      tf.dispose([x, ...rs, y]);
    });
    expect(peakNewBytes).toBe(8000);
    ledger.detach();
  });
});
