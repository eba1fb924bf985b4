import { expect, it } from 'vitest';
import { formatBytes, InputError, parseBytes } from '../src/index.ts';

it('parseBytes reads bytes and decimal or binary suffixes, and reads back what formatBytes writes', () => {
  expect(parseBytes('512MiB')).toBe(512 * 2 ** 20);
  expect(parseBytes('2GB')).toBe(2e9);
  expect(parseBytes('1.5KiB')).toBe(1536);
  expect(parseBytes(1234)).toBe(1234);
  for (const bytes of [512, 1536, 3 * 1024 ** 3]) expect(parseBytes(formatBytes(bytes))).toBe(bytes);
  expect(() => parseBytes('lots', 'memory budget')).toThrow(InputError);
  expect(() => parseBytes('lots', 'memory budget')).toThrow(/memory budget 'lots' is not a size/);
});
