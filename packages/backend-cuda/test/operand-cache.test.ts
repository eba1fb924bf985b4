import { expect, it } from 'vitest';
import type { CudaDevice } from '../src/device.ts';
import { cachedOperand, clearOperandCache, KEEPS_OPERAND_CACHE } from '../src/operand-cache.ts';

it('an operand copy (bf16 or padded float32) is reused by the next matmul and freed (once) when another kernel runs', () => {
  const freed: number[] = [];
  const device = { free: (p: number) => freed.push(p) } as unknown as CudaDevice;
  let next = 100;
  const make = () => next++;
  const dy = {};
  const w = {};
  const first = cachedOperand(device, dy, 768, true, make);
  expect(cachedOperand(device, dy, 768, true, make)).toBe(first); // dW = xᵀ·dy after dx = dy·Wᵀ
  const padded = cachedOperand(device, dy, 776, true, make); // other row padding: another copy
  expect(padded).not.toBe(first);
  const other = cachedOperand(device, w, 768, true, make);
  const f32 = cachedOperand(device, dy, 768, false, make); // the float32 padded copy is another one
  expect(cachedOperand(device, dy, 768, false, make)).toBe(f32);
  expect(new Set([first, padded, other, f32]).size).toBe(4);
  clearOperandCache();
  expect(freed.sort()).toEqual([first, padded, other, f32].sort());
  expect(cachedOperand(device, dy, 768, true, make)).not.toBe(first); // made again after the clear
  clearOperandCache();
  // Only matmuls and launch-free views keep it: an in-place writer (an optimizer, an add) must clear it.
  expect([...KEEPS_OPERAND_CACHE].sort()).toEqual(['BatchMatMul', 'Identity', 'Reshape', '_FusedMatMul']);
});
