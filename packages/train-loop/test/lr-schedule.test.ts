import { expect, it } from 'vitest';
import { learningRateAt } from '../src/index.ts';

it('warms up linearly to the peak, then decays along a cosine to 10% of it', () => {
  const peak = 0.3;
  const warmup = 4;
  const total = 14;
  expect([1, 2, 3, 4].map((s) => learningRateAt(s, total, peak, warmup))).toEqual(
    [1, 2, 3, 4].map((s) => (peak * s) / 4),
  );
  // Half-way through the decay (step 9 of 5…14 → progress 0.5): cos(π/2) = 0, so 0.1 + 0.9 · 0.5 of the peak.
  expect(learningRateAt(9, total, peak, warmup)).toBeCloseTo(peak * 0.55, 12);
  expect(learningRateAt(total, total, peak, warmup)).toBeCloseTo(peak * 0.1, 12);
  // Past the end it stays at the floor; without warm-up step 0 is the peak.
  expect(learningRateAt(total + 5, total, peak, warmup)).toBeCloseTo(peak * 0.1, 12);
  expect(learningRateAt(0, total, peak, 0)).toBe(peak);
});
