import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { selectBackend, shutdownWebGPU } from '../src/index.ts';
import { skipWebGPU } from './helpers.ts';

const skip = skipWebGPU('WebGPU from a bundle-style import was NOT tested');

describe.skipIf(skip)('WebGPU when tfjs-backend-webgpu comes as CommonJS behind a dynamic import', () => {
  afterAll(() => shutdownWebGPU());

  // In the esbuild bundle (kstar.mjs) the package's exports are the import's `default`, nothing else: the backend
  // factory must find WebGPUBackend there (main f02e367 failed with "WebGPUBackend is not a constructor").
  it('starts and runs a kernel', async () => {
    const { backend } = await selectBackend('webgpu', {
      load: async (pkg) => {
        const m = await import(pkg);
        return pkg === '@tensorflow/tfjs-backend-webgpu' ? { default: m } : m;
      },
    });
    expect(backend).toBe('webgpu');
    expect(tf.getBackend()).toBe('webgpu');
    const y = tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4]));
    expect(Array.from(await y.data())).toEqual([4, 6]);
    y.dispose();
  });
});
