import { causalSoftmaxKernel, geluKernel, selectBackend, shutdownWebGPU } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { createGPT } from '../src/index.ts';
import { batchOf, MICRO } from './helpers.ts';

// The GPT on WebGPU runs the fused WGSL kernels (GELU, LayerNorm, causal softmax, cross-entropy); its loss and every
// gradient must match the same model on cpu (tfjs ops only). On lavapipe in CI; KSTAR_SKIP_WEBGPU=1 skips.
const skip = process.env.KSTAR_SKIP_WEBGPU === '1';
if (skip) console.warn('KSTAR_SKIP_WEBGPU=1: the GPT on WebGPU (fused kernels) was NOT tested');

async function lossAndGrads(): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  const model = createGPT(MICRO, { seed: 3 });
  const batch = batchOf(2, 8, MICRO.vocabSize, 1);
  const start = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(
    () => model.loss(batch) as tf.Scalar,
    [...model.variables.values()],
  );
  const out = new Map<string, Float32Array>();
  for (const [name, v] of model.variables) out.set(name, (await grads[v.name]!.data()) as Float32Array);
  const loss = (await value.data())[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  expect(tf.memory().numTensors).toBe(start);
  tf.dispose([batch.inputs, batch.targets]);
  model.dispose();
  return { loss, grads: out };
}

describe.skipIf(skip)('GPT on webgpu (fused kernels)', () => {
  afterAll(() => shutdownWebGPU());

  it('loss and every gradient match cpu (tfjs ops)', async () => {
    await tf.setBackend('cpu');
    const cpu = await lossAndGrads();
    await selectBackend('webgpu');
    tf.tidy(() => {
      expect(geluKernel.which(tf.zeros([1]))).toBe('native');
      expect(causalSoftmaxKernel.which({ s: tf.zeros([1, 1, 2, 2]), scale: 1 })).toBe('native');
    });
    tf.disposeVariables();
    const gpu = await lossAndGrads();
    expect(gpu.loss).toBeCloseTo(cpu.loss, 5);
    for (const [name, g] of cpu.grads) {
      const h = gpu.grads.get(name)!;
      let maxDiff = 0;
      let maxRef = 1e-8;
      for (let i = 0; i < g.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(g[i]! - h[i]!));
        maxRef = Math.max(maxRef, Math.abs(g[i]!));
      }
      expect(maxDiff / maxRef, name).toBeLessThan(1e-4);
    }
  });
});
