import { expect, it } from 'vitest';
import { formatDuration, ProgressBar } from '../src/index.ts';

it('durations read as a person writes them; unknown is --', () => {
  expect([42, 187, 3725, Number.NaN].map(formatDuration)).toEqual(['42s', '3m07s', '1h02m', '--']);
});

it('off a terminal the bar prints step 1, every N-th step and the last, one line each', () => {
  const lines: string[] = [];
  const bar = new ProgressBar({ write: (s: string) => lines.push(s) > 0, isTTY: false }, 2);
  for (let step = 1; step <= 5; step++) {
    bar.update({ step, total: 5, loss: 1 / step, tokensPerSecond: 1000, elapsedSeconds: step });
  }
  bar.log('validation');
  expect(lines.map((l) => /^step (\d)\/5/.exec(l)?.[1] ?? l)).toEqual(['1', '2', '4', '5', 'validation\n']);
  // ETA: the mean step time × the steps left (4 steps of 1 s left after step 1).
  expect(lines[0]).toMatch(/loss 1\.0000 \| 1,000 tok\/s \| ETA 4s\n$/);
});
