import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';

// Its own file, so its own process: nothing has registered the K* kernels before the import below.
it("'@kstar/kernels/register' registers the K* kernels as a side effect", async () => {
  expect(tf.getKernel('KstarAdamW', 'cpu')).toBeUndefined();
  expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeUndefined();
  await import('../src/register.ts');
  for (const backend of ['cpu', 'wasm', 'webgpu']) expect(tf.getKernel('KstarAdamW', backend)).toBeDefined();
  expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
});
