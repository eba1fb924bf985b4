import {
  activeWebGPUBackend,
  backendMemory,
  selectBackend,
  shutdownWebGPU,
  webgpuDevice,
} from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect } from 'vitest';

/**
 * True when KSTAR_SKIP_WEBGPU=1 (developers without Vulkan), saying what was not tested. CI must run the WebGPU
 * tests (lavapipe, `scripts/setup-webgpu.sh`): there a missing adapter fails them.
 */
export function skipWebGPU(notTested: string): boolean {
  const skip = process.env.KSTAR_SKIP_WEBGPU === '1';
  if (skip) console.warn(`KSTAR_SKIP_WEBGPU=1: ${notTested}`);
  return skip;
}

/**
 * Inside a `describe`: selects `backend` before its tests (WebGPU through `@kstar/kernels`' `selectBackend`), holds
 * `tf.memory().numTensors` constant across them, and shuts WebGPU down after.
 */
export function onBackend(backend: 'cpu' | 'wasm' | 'webgpu'): void {
  let start = 0;
  beforeAll(async () => {
    if (backend === 'webgpu') {
      const selected = await selectBackend('webgpu').catch((e: Error) => {
        e.message += ' (developers without Vulkan: set KSTAR_SKIP_WEBGPU=1 to skip the WebGPU tests)';
        throw e;
      });
      expect(selected.backend).toBe('webgpu');
    } else {
      expect(await tf.setBackend(backend)).toBe(true);
      await tf.ready();
    }
    start = tf.memory().numTensors;
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(start);
    if (backend === 'webgpu') shutdownWebGPU();
  });
}

/** tfjs batches dispatches; submitting inside an error scope makes their validation errors land in it. */
export function submitPendingWebGPU(): void {
  if (tf.getBackend() !== 'webgpu') return;
  const b = activeWebGPUBackend('submitPendingWebGPU');
  // tfjs submits by itself every 15 dispatches (WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE): then nothing is pending.
  if (b.commandEncoder == null) return;
  b.endComputePassEncoder();
  b.submitQueue();
}

/** Runs `f` inside a WebGPU validation error scope, submits what tfjs batched, returns the error message or null. */
export async function webgpuValidationError(f: () => void | Promise<void>): Promise<string | null> {
  const device = webgpuDevice()!;
  device.pushErrorScope('validation');
  await f();
  submitPendingWebGPU();
  const error = await device.popErrorScope();
  return error?.message ?? null;
}

/** Runs `f` inside a WebGPU validation error scope and fails the test on any error Dawn reports. */
export async function expectNoValidationError(f: () => void | Promise<void>): Promise<void> {
  expect(await webgpuValidationError(f)).toBeNull();
}

/**
 * The `around` of a webgpu parity run of an in-place update: each update inside a validation error scope (any error
 * fails the test), and from step 2 on, when the parameter and its state already live on the GPU, no GPU buffer added.
 */
export async function inPlaceWebGPUStep(update: () => void | Promise<void>, step: number): Promise<void> {
  const gpuBefore = backendMemory().gpuBytesInUse!;
  await expectNoValidationError(update);
  if (step > 1) expect(backendMemory().gpuBytesInUse).toBeLessThanOrEqual(gpuBefore);
}
