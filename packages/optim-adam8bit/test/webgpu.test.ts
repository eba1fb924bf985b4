import { selectBackend, shutdownWebGPU, webgpuDevice } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goldenCheck, nanCheck, parityCheck, resumeCheck, stateBytesCheck } from './suite.ts';

// A missing adapter FAILS these tests; developers without Vulkan may set KSTAR_SKIP_WEBGPU=1.
const skip = process.env.KSTAR_SKIP_WEBGPU === '1';
if (skip) console.warn('KSTAR_SKIP_WEBGPU=1: the WebGPU adam8bit kernel was NOT tested');

describe.skipIf(skip)('adam8bit on webgpu (lavapipe)', () => {
  let start = 0;
  beforeAll(async () => {
    const { backend } = await selectBackend('webgpu');
    expect(backend).toBe('webgpu');
    start = tf.memory().numTensors;
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(start);
    shutdownWebGPU();
  });

  it('golden adamw run within 2e-2 (8-bit state), no validation error', async () => {
    const device = webgpuDevice()!;
    device.pushErrorScope('validation');
    await goldenCheck('webgpu');
    const error = await device.popErrorScope();
    expect(error?.message ?? null).toBeNull();
  });
  it('native kernel and fallback vs the float64 model', async () => {
    await parityCheck('webgpu');
  });
  it('state bytes, NaN gradients, resume', async () => {
    stateBytesCheck();
    await nanCheck('auto');
    await resumeCheck('webgpu-resume');
  });
});
