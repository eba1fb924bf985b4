import { describe, expect, it } from 'vitest';
import { Calibration, medianMs } from '../src/index.ts';

describe('Calibration', () => {
  it('measures a key once and reads it back from its JSON', async () => {
    const c = new Calibration();
    let calls = 0;
    const measure = () => {
      calls++;
      return 2.5;
    };
    expect(await c.time('m|cpu|B4T64|block', measure)).toBe(2.5);
    expect(await c.time('m|cpu|B4T64|block', measure)).toBe(2.5);
    expect(calls).toBe(1);
    expect(c.measured).toEqual(['m|cpu|B4T64|block']);
    const again = new Calibration(JSON.parse(JSON.stringify(c.toJSON())));
    expect(await again.time('m|cpu|B4T64|block', measure)).toBe(2.5);
    expect(calls).toBe(1);
    expect(again.measured).toEqual([]);
  });

  it('rejects a time that is not a duration', async () => {
    await expect(new Calibration().time('k', () => Number.NaN)).rejects.toThrow(/measured NaN ms/);
  });

  it('medianMs times a function', async () => {
    const ms = await medianMs(() => {
      const t = performance.now();
      while (performance.now() - t < 2);
    });
    expect(ms).toBeGreaterThanOrEqual(2);
  });
});
