import { expect, it } from 'vitest';
import { checkStep, InputError, splitImpl } from '../src/index.ts';

it('splitImpl: auto by default, fallback kept, anything else refused with the value; the rest passes through', () => {
  expect(splitImpl({ lr: 1 }, 'toy')).toEqual({ impl: 'auto', rest: { lr: 1 } });
  expect(splitImpl(undefined, 'toy')).toEqual({ impl: 'auto', rest: {} });
  expect(splitImpl({ lr: 1, impl: 'fallback' }, 'toy')).toEqual({ impl: 'fallback', rest: { lr: 1 } });
  expect(() => splitImpl({ impl: 'gpu' }, 'toy')).toThrow(InputError);
  expect(() => splitImpl({ impl: 'gpu' }, 'toy')).toThrow(
    `toy: impl = "gpu" is invalid: it must be 'auto' or 'fallback'`,
  );
});

it('checkStep: integers ≥ 1 pass, 0 and 1.5 are refused with the value', () => {
  expect(() => checkStep(1, 'toy')).not.toThrow();
  expect(() => checkStep(0, 'toy')).toThrow('toy: step = 0 is invalid: it must be an integer ≥ 1 (1-based)');
  expect(() => checkStep(1.5, 'toy')).toThrow(/step = 1\.5 is invalid/);
});
