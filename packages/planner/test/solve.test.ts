import { rng } from '@kstar/testkit';
import { describe, expect, it } from 'vitest';
import { type PlanProblem, solve, solveExhaustive, solveGreedy } from '../src/index.ts';

interface Item {
  bytes: number;
  ms: number;
}

/** A separable problem: bytes and time add up over slots (a multiple-choice knapsack). */
function separable(
  seed: number,
  nSlots: number,
  nOptions: number,
  budgetFraction: number,
): PlanProblem<Item> {
  const r = rng(seed);
  const slots = Array.from({ length: nSlots }, (_, i) => ({
    name: `slot ${i}`,
    options: Array.from({ length: nOptions }, () => ({ bytes: 1 + Math.floor(r() * 100), ms: r() * 10 })),
  }));
  const minBytes = slots.reduce((s, sl) => s + Math.min(...sl.options.map((o) => o.bytes)), 0);
  const maxBytes = slots.reduce((s, sl) => s + Math.max(...sl.options.map((o) => o.bytes)), 0);
  return {
    slots,
    budget: Math.round(minBytes + budgetFraction * (maxBytes - minBytes)),
    evaluate: (a) => ({ bytes: a.reduce((s, o) => s + o.bytes, 0), ms: a.reduce((s, o) => s + o.ms, 0) }),
  };
}

/** Independent reference: dynamic programming over slots and integer bytes (min time per byte total). */
function knapsackMinMs(p: PlanProblem<Item>): number {
  let best = new Map<number, number>([[0, 0]]);
  for (const slot of p.slots) {
    const next = new Map<number, number>();
    for (const [b, ms] of best) {
      for (const o of slot.options) {
        const nb = b + o.bytes;
        if (nb > p.budget) continue;
        const nms = ms + o.ms;
        if (!(next.get(nb)! <= nms)) next.set(nb, nms);
      }
    }
    best = next;
  }
  return Math.min(...best.values());
}

describe('exhaustive solver', () => {
  it('finds the optimum of separable problems (checked by dynamic programming)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const p = separable(seed, 5, 4, 0.3);
      const s = solveExhaustive(p);
      expect(s.evaluated).toBe(4 ** 5);
      expect(s.evaluation.bytes).toBeLessThanOrEqual(p.budget);
      expect(s.evaluation.ms).toBeCloseTo(knapsackMinMs(p), 9);
    }
  });
});

describe('greedy solver', () => {
  it('fits the budget and stays near the optimum on separable problems', () => {
    const ratios: number[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const p = separable(seed, 6, 4, 0.5);
      const g = solveGreedy(p);
      expect(g.evaluation.bytes).toBeLessThanOrEqual(p.budget);
      ratios.push(g.evaluation.ms / knapsackMinMs(p));
    }
    // Never better than the optimum (it is one of the assignments), and close on average.
    for (const r of ratios) expect(r).toBeGreaterThanOrEqual(1 - 1e-12);
    expect(ratios.reduce((a, b) => a + b, 0) / ratios.length).toBeLessThan(1.1);
  });

  it('finds what shedding from the fastest plan misses: one big change that fits vs two small ones that are faster', () => {
    // From the fastest plan (22 bytes) the one change that fits at once is A slow (12 bytes, 5 ms), and no pair
    // undoes it; the optimum is B and C slow (12 → 10 bytes, 4 ms), which the start from the smallest plan reaches.
    const slot = (name: string, bytes: number, slowMs: number) => ({
      name,
      options: [
        { bytes, ms: 0 },
        { bytes: 0, ms: slowMs },
      ],
    });
    const p: PlanProblem<Item> = {
      slots: [slot('A', 10, 5), slot('B', 6, 2), slot('C', 6, 2)],
      budget: 12,
      evaluate: (a) => ({ bytes: a.reduce((s, o) => s + o.bytes, 0), ms: a.reduce((s, o) => s + o.ms, 0) }),
    };
    expect(solveExhaustive(p).evaluation.ms).toBe(4);
    expect(solveGreedy(p).evaluation).toMatchObject({ ms: 4 });
    expect(solveGreedy(p).evaluation.bytes).toBeLessThanOrEqual(12);
  });

  it('evaluates far fewer plans than enumeration', () => {
    const p = separable(7, 10, 4, 0.4);
    const g = solveGreedy(p);
    expect(g.evaluated).toBeLessThan(4 ** 10 / 100);
  });
});

describe('solve', () => {
  it('enumerates small spaces and searches greedily above the limit', () => {
    const p = separable(3, 4, 3, 0.5);
    expect(solve(p).solver).toBe('exhaustive');
    expect(solve(p, { exhaustiveLimit: 10 }).solver).toBe('greedy');
  });

  it('names the smallest predicted peak when no plan fits', () => {
    const p = { ...separable(3, 4, 3, 0), budget: 1 };
    expect(() => solve(p)).toThrow(
      /memory budget 1 bytes is below every plan's predicted peak \(smallest \d+ bytes/,
    );
  });
});
