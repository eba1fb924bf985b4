import { describe, expect, it } from 'vitest';
import { type GpuBenchRow, gpuSummary, medianTokensPerSecond } from '../src/bench-gpu.ts';

describe('bench gpu medians', () => {
  it('skips the first two steps and ignores one slow step', () => {
    // compile step, pool-growth step, then 0.5 s steps with one 2 s stall: the mean would say 1,456 tokens/s.
    expect(medianTokensPerSecond([9, 1.2, 0.5, 2, 0.5, 0.5], 1000)).toBe(2000);
    expect(medianTokensPerSecond([9, 1.2, 0.4, 0.6], 1000)).toBe(2000); // even count: mean of the middle two
    expect(medianTokensPerSecond([9, 1.2], 1000)).toBeNull();
  });

  it('summarises each configuration over its rounds', () => {
    const row = (name: string, t: number | null) => ({ name, tokensPerSecondMedian: t }) as GpuBenchRow;
    const s = gpuSummary([row('a', 30), row('b', 5), row('a', 10), row('a', 20), row('b', null)]);
    expect(s).toEqual([
      { name: 'a', runs: 3, tokensPerSecondMedian: 20, min: 10, max: 30 },
      { name: 'b', runs: 1, tokensPerSecondMedian: 5, min: 5, max: 5 },
    ]);
  });
});
