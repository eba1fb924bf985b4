import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { formatParity, fusedKernelParity, layerNormKernel, TINY_PARITY_SHAPES } from '../src/index.ts';
import { onBackend, skipWebGPU, withoutValidationError } from './helpers.ts';

// The fused WGSL kernels against their tfjs-ops fallbacks and a float64 reference, on lavapipe in CI.
const skip = skipWebGPU('the fused WGSL kernels were NOT parity-tested');

describe.skipIf(skip)('fused WGSL kernels (webgpu)', () => {
  onBackend('webgpu'); // tensors held constant across the tests

  it('every fused kernel runs natively and matches its fallback and float64, forward and gradient', async () => {
    const rows = await withoutValidationError(() => fusedKernelParity(TINY_PARITY_SHAPES));
    console.log(formatParity(rows));
    expect(rows.length).toBe(11);
    for (const r of rows) {
      expect(r.impl, r.kernel).toBe('native');
      expect(r.pass, `${r.kernel}: ${JSON.stringify(r)}`).toBe(true);
    }
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
