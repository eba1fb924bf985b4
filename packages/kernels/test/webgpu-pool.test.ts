import { TrainingError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  activeWebGPUBackend,
  boundWebGPUPool,
  DEFAULT_MAX_FREE_POOL_BYTES,
  flat,
  flatProgram,
  flushWebGPU,
  guardWebGPUStep,
  resetWebGPUPoolPeaks,
  webgpuPoolStats,
} from '../src/index.ts';
import { onBackend, skipWebGPU } from './helpers.ts';

// Runs on lavapipe in CI (see webgpu.test.ts); KSTAR_SKIP_WEBGPU=1 skips.
const skip = skipWebGPU('the WebGPU pool bound and step error guard were NOT tested');

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
  onBackend('webgpu'); // tensors held constant across the tests

  it('the backend starts with the default bound installed', () => {
    expect(webgpuPoolStats(tf.backend())!.maxFreeBytes).toBe(DEFAULT_MAX_FREE_POOL_BYTES);
  });

  const bound = 64 * 1024;

  it('unbounded (control): the pool grows past the largest working set + the bound', async () => {
    boundWebGPUPool(tf.backend(), Number.POSITIVE_INFINITY);
    for (let i = 0; i < 6; i++) await fakeStep(i);
    const s = webgpuPoolStats(tf.backend())!;
    // Six steps of 6 new sizes each stay in the pool: ~3 MB against a working set of ~1 MB.
    expect(s.bytesAllocated - s.highWaterBytesInUse).toBeGreaterThan(1024 * 1024);
  });

  it('bounded: allocated ≤ high-water in use + bound after every step, and results stay right', async () => {
    boundWebGPUPool(tf.backend(), bound); // also evicts what the control left
    resetWebGPUPoolPeaks(tf.backend());
    for (let i = 0; i < 8; i++) {
      let expected = 0;
      for (let k = 1; k <= 6; k++) expected += 1000 * (k + 7 * i);
      expect(await fakeStep(i)).toBe(expected);
      const s = webgpuPoolStats(tf.backend())!;
      expect(s.bytesAllocated - s.highWaterBytesInUse).toBeLessThanOrEqual(bound);
      // At every moment, not only at step ends: buffers are evicted before a new one is created too.
      expect(s.peakBytesAllocated - s.highWaterBytesInUse).toBeLessThanOrEqual(bound);
      expect(s.highWaterBytesInUse).toBeLessThan(2 * 1024 * 1024); // unbounded, 8 steps would hold ~5 MB
    }
    const s = webgpuPoolStats(tf.backend())!;
    expect(s.evictedBytes).toBeGreaterThan(0);
    expect(s.peakBytesAllocated).toBeGreaterThanOrEqual(s.peakBytesInUse);
    boundWebGPUPool(tf.backend(), DEFAULT_MAX_FREE_POOL_BYTES);
  });

  it('a forced validation error in a step throws TrainingError naming the step', async () => {
    const x = tf.tensor(new Float32Array(256).fill(1));
    const b = activeWebGPUBackend('test');
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
