import { expect, it } from 'vitest';
import { cachedBf16, clearBf16Cache, KEEPS_BF16_CACHE } from '../src/bf16-cache.ts';
import type { CudaDevice } from '../src/device.ts';

it('a bf16 operand copy is reused by the next matmul and freed (once) when another kernel runs', () => {
  const freed: number[] = [];
  const device = { free: (p: number) => freed.push(p) } as unknown as CudaDevice;
  let next = 100;
  const make = () => next++;
  const dy = {};
  const w = {};
  const first = cachedBf16(device, dy, 768, make);
  expect(cachedBf16(device, dy, 768, make)).toBe(first); // dW = xᵀ·dy after dx = dy·Wᵀ
  const padded = cachedBf16(device, dy, 776, make); // other row padding: another copy
  expect(padded).not.toBe(first);
  const other = cachedBf16(device, w, 768, make);
  expect(new Set([first, padded, other]).size).toBe(3);
  clearBf16Cache();
  expect(freed.sort()).toEqual([first, padded, other].sort());
  expect(cachedBf16(device, dy, 768, make)).not.toBe(first); // made again after the clear
  clearBf16Cache();
  // Only matmuls and launch-free views keep it: an in-place writer (an optimizer, an add) must clear it.
  expect([...KEEPS_BF16_CACHE].sort()).toEqual(['BatchMatMul', 'Identity', 'Reshape', '_FusedMatMul']);
});
