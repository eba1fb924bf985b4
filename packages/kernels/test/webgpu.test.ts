import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activeWebGPUBackend,
  backendMemory,
  flat,
  flatProgram,
  selectBackend,
  shutdownWebGPU,
  webgpuDevice,
} from '../src/index.ts';
import { adamwParity, aliasingCheck, checkRow, formatRows, SHAPES, staleReadCheck } from './adamw-parity.ts';
import { skipWebGPU } from './helpers.ts';

// WebGPU must be tested in CI (lavapipe, see scripts/setup-webgpu.sh): a missing adapter FAILS these tests.
// Developers without Vulkan may set KSTAR_SKIP_WEBGPU=1.
const skip = skipWebGPU('the WebGPU kernels (AdamW parity on webgpu) were NOT tested');

/** Runs `f` inside a validation error scope, forces submission with `flush`, and returns the captured error. */
async function validationError(f: () => void, flush: () => Promise<unknown>): Promise<string | null> {
  const device = webgpuDevice()!;
  device.pushErrorScope('validation');
  f();
  await flush();
  const error = await device.popErrorScope();
  return error?.message ?? null;
}

/** tfjs batches dispatches; submitting inside the scope makes their validation errors land in it. */
async function flush(): Promise<void> {
  const b = activeWebGPUBackend('flush');
  b.endComputePassEncoder();
  b.submitQueue();
}

describe.skipIf(skip)('webgpu (Dawn via the webgpu package)', () => {
  let tensorsAtStart = 0;
  beforeAll(async () => {
    // Throws BackendUnavailableError with the reason and what to install when no adapter is available.
    const { backend } = await selectBackend('webgpu').catch((e: Error) => {
      e.message += ' (developers without Vulkan: set KSTAR_SKIP_WEBGPU=1 to skip the WebGPU tests)';
      throw e;
    });
    expect(backend).toBe('webgpu');
    tensorsAtStart = tf.memory().numTensors;
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(tensorsAtStart);
    shutdownWebGPU();
  });

  it('AdamW: native kernel and fallback match a float64 reference, no validation error, no new buffer', async () => {
    const rows = [];
    for (const [i, shape] of SHAPES.entries()) {
      rows.push(
        await adamwParity(shape, 11 + i, async (update, step) => {
          const gpuBefore = backendMemory().gpuBytesInUse!;
          const error = await validationError(update, flush);
          expect(error).toBeNull();
          // From step 2 on p, m and v already live on the GPU: the in-place update adds no GPU buffer.
          if (step > 1) expect(backendMemory().gpuBytesInUse).toBeLessThanOrEqual(gpuBefore);
        }),
      );
    }
    console.log(formatRows('webgpu', rows));
    rows.forEach(checkRow);
  });

  it('AdamW: does not write through a live clone (shared buffer → assign fallback)', async () => {
    await aliasingCheck(false);
  });

  it('AdamW: values read between updates are not served stale (CPU cache invalidated)', async () => {
    await staleReadCheck();
  });

  it('the error scope does catch a buffer bound as input and output (negative control)', async () => {
    const x = tf.tensor(new Float32Array(256).fill(1));
    const b = activeWebGPUBackend('test');
    const program = flatProgram({
      key: 'negative_control',
      size: 256,
      inputs: ['A'],
      body: 'result[index] = A[index];',
    });
    const error = await validationError(
      () => b.runWebGPUProgram(program, [flat(x)], 'float32', undefined, flat(x)),
      flush,
    );
    expect(error).toMatch(/writable usage and another usage|usage/i);
    x.dispose();
  });

  it('backendMemory reports the GPU meters', () => {
    const m = backendMemory();
    expect(m.backend).toBe('webgpu');
    expect(m.gpuBytesAllocated).toBeGreaterThanOrEqual(m.gpuBytesInUse!);
  });
});
