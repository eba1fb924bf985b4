import { expect, it } from 'vitest';
import { SpikeGuard } from '../src/index.ts';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

it('skips a loss over FACTOR × the median of the accepted window, never in the first 5 steps', () => {
  const guard = new SpikeGuard(2, 5);
  const losses = [9, 3.1, 3.0, 2.9, 2.8, 10.8, 2.7, 5.3, 6.0];
  const decisions = losses.map((l, i) => guard.check(l, i + 1));
  // Window (last 5 accepted) before step 6: [9, 3.1, 3.0, 2.9, 2.8] → median 3.0; 10.8 > 6 is skipped. Step 8:
  // [3.1, 3.0, 2.9, 2.8, 2.7] → 2.9, 5.3 < 5.8 accepted; step 9: [3.0, 2.9, 2.8, 2.7, 5.3] → 2.9, 6.0 > 5.8 skipped.
  expect(decisions).toEqual([false, false, false, false, false, true, false, false, true]);
  expect(guard.skipped).toEqual([
    { step: 6, loss: 10.8, median: median([9, 3.1, 3.0, 2.9, 2.8]) },
    { step: 9, loss: 6.0, median: median([3.0, 2.9, 2.8, 2.7, 5.3]) },
  ]);
});
