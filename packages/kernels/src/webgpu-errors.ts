import { TrainingError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { activeWebGPUBackend, type WebGPUKernelBackend } from './define-kernel.ts';

/**
 * WebGPU errors are asynchronous: a bad dispatch or an out-of-memory buffer does not throw where it happens, the
 * command buffer is just invalid ("Invalid CommandBuffer") and every later number is garbage. `guardWebGPUStep` runs
 * one step inside `validation` and `out-of-memory` error scopes, submits the step's pending work inside them, and
 * throws a `TrainingError` naming the step when a scope caught an error, the device was lost, or an error escaped
 * to `uncapturederror` (e.g. from work outside any scope) since the last check.
 */

interface GuardedDevice {
  pushErrorScope(filter: 'validation' | 'out-of-memory' | 'internal'): void;
  popErrorScope(): Promise<{ message: string } | null>;
  readonly lost?: Promise<{ reason?: string; message?: string }>;
  addEventListener?(
    type: 'uncapturederror',
    listener: (event: { error?: { message?: string } }) => void,
  ): void;
}

interface Watch {
  lost: string | null;
  uncaptured: string[];
}

const watches = new WeakMap<object, Watch>();

/** Starts recording `device.lost` and `uncapturederror` for `device` (idempotent). Called when the backend starts. */
export function watchWebGPUDevice(device: object): void {
  if (watches.has(device)) return;
  const d = device as GuardedDevice;
  const w: Watch = { lost: null, uncaptured: [] };
  watches.set(device, w);
  d.lost?.then(
    (info) => {
      // 'destroyed' is our own shutdownWebGPU(); anything else is the driver or an out-of-memory reset.
      if (info?.reason !== 'destroyed')
        w.lost = `${info?.reason ?? 'unknown'}: ${info?.message ?? ''}`.trim();
    },
    () => {},
  );
  d.addEventListener?.('uncapturederror', (event) => {
    w.uncaptured.push(event?.error?.message ?? String(event));
  });
}

/** Device errors seen so far outside error scopes (read and cleared) and whether the device is lost. */
export function takeWebGPUDeviceErrors(device: object): { lost: string | null; uncaptured: string[] } {
  const w = watches.get(device);
  if (!w) return { lost: null, uncaptured: [] };
  const out = { lost: w.lost, uncaptured: w.uncaptured };
  w.uncaptured = [];
  return out;
}

/** The active webgpu backend and its device, or null on any other backend. */
function activeWebGPU(): { backend: WebGPUKernelBackend; device: GuardedDevice } | null {
  if (tf.getBackend() !== 'webgpu') return null;
  const backend = activeWebGPUBackend('activeWebGPU');
  const device = backend.device as GuardedDevice | undefined;
  return device ? { backend, device } : null;
}

/** Ends the open compute pass and submits tfjs's batched command encoder, so its errors land in the open scopes. */
export function flushWebGPU(): void {
  const w = activeWebGPU();
  if (!w) return;
  const b = w.backend;
  b.endComputePassEncoder();
  if (b.commandEncoder != null) b.submitQueue();
}

/**
 * Runs `f` (one training step); on WebGPU inside error scopes. Throws `TrainingError(step, …)` when the GPU reported
 * a validation or out-of-memory error, lost the device, or raised an uncaptured error during the step. On other
 * backends it just returns `f()`.
 */
export async function guardWebGPUStep<T>(step: number, f: () => Promise<T>): Promise<T> {
  const w = activeWebGPU();
  if (!w) return f();
  const { device } = w;
  // Errors raised since the last check (e.g. by an evaluation between steps) are reported with this step, not dropped.
  watchWebGPUDevice(device);
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T;
  let thrown: unknown = null;
  try {
    result = await f();
  } catch (e) {
    thrown = e;
  } finally {
    try {
      flushWebGPU();
    } catch {
      // a lost device can refuse the submit; the checks below report it
    }
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  const { lost, uncaptured } = takeWebGPUDeviceErrors(device);
  const problems: string[] = [];
  if (validation) problems.push(`validation error: ${validation.message}`);
  if (oom) problems.push(`out of GPU memory: ${oom.message}`);
  if (lost) problems.push(`device lost (${lost})`);
  for (const u of uncaptured) problems.push(`uncaptured error: ${u}`);
  if (problems.length > 0) {
    throw new TrainingError(
      step,
      `WebGPU failed in step ${step}: ${problems.join('; ')}. The step's numbers cannot be trusted, so training stopped` +
        (oom ? ' (lower --batch or --seq, or use a memory plugin such as --mode segmented)' : ''),
    );
  }
  if (thrown) throw thrown;
  return result!;
}
