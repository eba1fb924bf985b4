import { webgpuDevice } from '@kstar/kernels';
import { onBackend, skipWebGPU } from '@kstar/testkit';
import { describe, expect, it } from 'vitest';
import { goldenCheck, itChecksParityAndState } from './suite.ts';

const skip = skipWebGPU('the WebGPU adam8bit kernel was NOT tested');

describe.skipIf(skip)('adam8bit on webgpu (lavapipe)', () => {
  onBackend('webgpu');

  it('golden adamw run within 2e-2 (8-bit state), no validation error', async () => {
    const device = webgpuDevice()!;
    device.pushErrorScope('validation');
    await goldenCheck('webgpu');
    const error = await device.popErrorScope();
    expect(error?.message ?? null).toBeNull();
  });
  itChecksParityAndState('webgpu');
});
