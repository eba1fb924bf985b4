import { totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  backendMemoryLimit,
  processMemoryLimit,
  WASM_HEAP_MAX_BYTES,
  webgpuBufferLimit,
} from '../src/index.ts';

describe('memory limits of the backends', () => {
  it('wasm is held to its 4 GiB heap, cpu to the process memory (≤ RAM), WebGPU to none in total', () => {
    expect(WASM_HEAP_MAX_BYTES).toBe(2 ** 32 - 2 ** 16);
    expect(backendMemoryLimit('wasm')!.bytes).toBe(Math.min(WASM_HEAP_MAX_BYTES, processMemoryLimit().bytes));
    expect(backendMemoryLimit('cpu')).toEqual(processMemoryLimit());
    expect(processMemoryLimit().bytes).toBeLessThanOrEqual(totalmem());
    expect(backendMemoryLimit('webgpu')).toBeUndefined();
  });

  it("WebGPU's per-buffer limit is the smaller of the binding and buffer limits, and none without a device", () => {
    const device = (binding: number, buffer: number) => ({
      limits: { maxStorageBufferBindingSize: binding, maxBufferSize: buffer },
    });
    expect(webgpuBufferLimit(device(1000, 4000))!.bytes).toBe(1000);
    expect(webgpuBufferLimit(device(4000, 3000))!.bytes).toBe(3000);
    expect(webgpuBufferLimit(null)).toBeUndefined();
    expect(webgpuBufferLimit({})).toBeUndefined();
  });
});
