import { TrainingError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  boundWebGPUPool,
  DEFAULT_MAX_FREE_POOL_BYTES,
  flat,
  flatProgram,
  flushWebGPU,
  guardWebGPUStep,
  selectBackend,
  shutdownWebGPU,
  type WebGPUBackendLike,
  webgpuPoolStats,
} from '../src/index.ts';

// Runs on lavapipe in CI (see webgpu.test.ts); KSTAR_SKIP_WEBGPU=1 skips.
const skip = process.env.KSTAR_SKIP_WEBGPU === '1';
if (skip) console.warn('KSTAR_SKIP_WEBGPU=1: the WebGPU pool bound and step error guard were NOT tested');

/** One "step": tensors of sizes that differ from step to step (as a model's temporaries do), all disposed. */
async function fakeStep(i: number): Promise<number> {
  const y = tf.tidy(() => {
    let acc = tf.zeros([1]);
    for (let k = 1; k <= 6; k++) {
      const n = 1000 * (k + 7 * i); // a new size every step: a size-keyed pool cannot reuse it
      const t = tf.fill([n], 1);
      acc = tf.add(acc, tf.sum(t));
    }
    return acc;
  });
  const v = (await y.data())[0]!;
  y.dispose();
  flushWebGPU();
  return v;
}

describe.skipIf(skip)('webgpu pool bound and step guard', () => {
  let tensorsAtStart = 0;
  beforeAll(async () => {
    await selectBackend('webgpu');
    tensorsAtStart = tf.memory().numTensors;
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(tensorsAtStart);
    shutdownWebGPU();
  });

  it('the backend starts with the default bound installed', () => {
    expect(webgpuPoolStats(tf.backend())!.maxFreeBytes).toBe(DEFAULT_MAX_FREE_POOL_BYTES);
  });

  it('unbounded (control): free bytes grow step after step', async () => {
    boundWebGPUPool(tf.backend(), Number.POSITIVE_INFINITY);
    const s0 = webgpuPoolStats(tf.backend())!;
    for (let i = 0; i < 6; i++) await fakeStep(i);
    const s1 = webgpuPoolStats(tf.backend())!;
    // Six steps of ≥ 6 new sizes × ≥ 4 kB each stay in the pool.
    expect(s1.bytesAllocated - s1.bytesInUse - (s0.bytesAllocated - s0.bytesInUse)).toBeGreaterThan(
      6 * 6 * 4000,
    );
  });

  it('bounded: allocated ≤ in use + bound after every step, and results stay right', async () => {
    const bound = 64 * 1024;
    boundWebGPUPool(tf.backend(), bound); // also evicts what the control left
    for (let i = 0; i < 8; i++) {
      let expected = 0;
      for (let k = 1; k <= 6; k++) expected += 1000 * (k + 7 * i);
      expect(await fakeStep(i)).toBe(expected);
      const s = webgpuPoolStats(tf.backend())!;
      expect(s.bytesAllocated - s.bytesInUse).toBeLessThanOrEqual(bound);
    }
    const s = webgpuPoolStats(tf.backend())!;
    expect(s.evictedBytes).toBeGreaterThan(0);
    expect(s.peakBytesAllocated).toBeGreaterThanOrEqual(s.peakBytesInUse);
    boundWebGPUPool(tf.backend(), DEFAULT_MAX_FREE_POOL_BYTES);
  });

  it('a forced validation error in a step throws TrainingError naming the step', async () => {
    const x = tf.tensor(new Float32Array(256).fill(1));
    const b = tf.backend() as unknown as WebGPUBackendLike;
    // One buffer bound as input and output: Dawn rejects the dispatch asynchronously.
    const program = flatProgram({
      key: 'guard_bad',
      size: 256,
      inputs: ['A'],
      body: 'result[index] = A[index];',
    });
    const err = await guardWebGPUStep(7, async () => {
      b.runWebGPUProgram(program, [flat(x)], 'float32', undefined, flat(x));
      return 1;
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingError);
    expect((err as TrainingError).step).toBe(7);
    expect((err as Error).message).toMatch(/WebGPU failed in step 7: validation error/);
    x.dispose();
  });

  it('a clean step passes through the guard with its value', async () => {
    const v = await guardWebGPUStep(8, async () => {
      const y = tf.tidy(() => tf.sum(tf.fill([100], 2)));
      const out = (await y.data())[0]!;
      y.dispose();
      return out;
    });
    expect(v).toBe(200);
  });
});
