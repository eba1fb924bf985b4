import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  flushWebGPU,
  formatParity,
  fusedKernelParity,
  layerNormKernel,
  selectBackend,
  shutdownWebGPU,
  TINY_PARITY_SHAPES,
  webgpuDevice,
} from '../src/index.ts';
import { skipWebGPU } from './helpers.ts';

// The fused WGSL kernels against their tfjs-ops fallbacks and a float64 reference, on lavapipe in CI.
const skip = skipWebGPU('the fused WGSL kernels were NOT parity-tested');

describe.skipIf(skip)('fused WGSL kernels (webgpu)', () => {
  let tensorsAtStart = 0;
  beforeAll(async () => {
    await selectBackend('webgpu');
    tensorsAtStart = tf.memory().numTensors;
  });
  afterAll(() => {
    shutdownWebGPU();
  });

  it('every fused kernel runs natively and matches its fallback and float64, forward and gradient', async () => {
    const device = webgpuDevice()!;
    device.pushErrorScope('validation');
    const rows = await fusedKernelParity(TINY_PARITY_SHAPES);
    flushWebGPU();
    const error = await device.popErrorScope();
    console.log(formatParity(rows));
    expect(error?.message ?? null).toBeNull();
    expect(rows.length).toBe(11);
    for (const r of rows) {
      expect(r.impl, r.kernel).toBe('native');
      expect(r.pass, `${r.kernel}: ${JSON.stringify(r)}`).toBe(true);
    }
    expect(tf.memory().numTensors).toBe(tensorsAtStart);
  });

  it('more rows than one dispatch dimension holds (65,535 workgroups, re-shaped by tfjs) still match', async () => {
    const N = 65_600;
    const x = tf.tensor2d(
      Float32Array.from({ length: 2 * N }, (_, i) => Math.sin(i)),
      [N, 2],
    );
    const gamma = tf.tensor1d([1, 2]);
    const beta = tf.tensor1d([0, 1]);
    const args = { x, gamma, beta, eps: 1e-5 };
    expect(layerNormKernel.which(args)).toBe('native');
    const a = layerNormKernel.run(args);
    const b = layerNormKernel.run(args, { impl: 'fallback' });
    for (const k of ['y', 'mean', 'rstd'] as const) {
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a[k], b[k]))));
      expect((await d.data())[0], k).toBeLessThan(1e-4);
      d.dispose();
    }
    tf.dispose([x, gamma, beta, a.y, a.mean, a.rstd, b.y, b.mean, b.rstd]);
  });
});
