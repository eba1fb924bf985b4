import { expect, it } from 'vitest';
import { CudaBackend } from '../src/backend.ts';
import type { CudaDevice } from '../src/device.ts';

// The step-peak window against a device that only counts allocations (no GPU): the since-start peak keeps the
// model-build allocation, the step peak sees only what happened after `resetStepPeak`.
it('resetStepPeak starts a new high-water window; the since-start peak is kept', () => {
  let next = 1;
  const device = {
    alloc: () => next++,
    free: () => {},
    upload: () => {},
    poolBytes: () => ({ used: 0, reserved: 0, usedHigh: 0, reservedHigh: 0 }),
  } as unknown as CudaDevice;
  const b = new CudaBackend(device);
  const build = b.makeOutput([1000], 'float32'); // 4000 B, freed before the step
  const weights = b.makeOutput([10], 'float32'); // 40 B, kept
  b.disposeData(build.dataId);
  b.resetStepPeak();
  expect(b.memory().stepPeakBytesInGPU).toBe(40);
  const temp = b.makeOutput([25], 'int32'); // +100 B inside the step
  b.disposeData(temp.dataId);
  const m = b.memory();
  expect(m.numBytesInGPU).toBe(40);
  expect(m.stepPeakBytesInGPU).toBe(140);
  expect(m.peakBytesInGPU).toBe(4040);
  b.disposeData(weights.dataId);
});
