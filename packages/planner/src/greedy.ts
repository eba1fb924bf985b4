import { better, type Evaluation, type PlanProblem, type Solution } from './problem.ts';

/**
 * Greedy local search for problems too large to enumerate, from two starts (the better kept). From the fastest: (1) Coordinate descent on time alone to the fastest
 * assignment; (2) while it is over budget, take the single-slot change that saves the most bytes per millisecond it
 * costs (Checkmate's LP relaxation and PyTorch's knapsack rank recomputation the same way: bytes saved per unit of
 * time); (3) coordinate descent again, on changes that make it faster and still fit: one slot, then two at once (a
 * global knob often pays only together with a boundary change, e.g. finer chunking that lets a segment keep its
 * activations). From the smallest: the cheapest assignment, then the fitting change that saves the most time per
 * byte it adds, repeatedly, then (3).
 */
/** Where the greedy search starts; both by default (the better result kept). */
export type GreedyStart = 'fastest' | 'smallest';

export function solveGreedy<O>(
  problem: PlanProblem<O>,
  starts: readonly GreedyStart[] = ['fastest', 'smallest'],
): Solution<O> {
  // Two starts, the better kept: shedding bytes from the fastest plan, and spending the budget from the smallest one.
  // Each alone can stop far from the optimum on a knapsack (a rate-greedy sheds a group it need not); together they
  // rarely do, and the result is never worse than either start alone.
  const found = starts.map((start) => searchFrom(problem, start));
  const best = found.reduce((a, b) => (better(b.evaluation, a.evaluation, problem.budget) ? b : a));
  return { ...best, evaluated: found.reduce((n, s) => n + s.evaluated, 0) };
}

function searchFrom<O>(problem: PlanProblem<O>, start: GreedyStart): Solution<O> {
  const { slots, budget } = problem;
  let evaluated = 0;
  let current: O[] = slots.map((s) => s.options[0] as O);
  let cur = problem.evaluate(current);
  evaluated++;

  /** Assignments one slot (or, `pairs`, two slots) away from `current` as it is when each is made, evaluated. */
  function* changes(pairs: boolean): Generator<[O[], Evaluation]> {
    for (let i = 0; i < slots.length; i++) {
      for (const oi of slots[i]!.options) {
        if (oi === current[i]) continue;
        if (!pairs) {
          const next = current.slice();
          next[i] = oi;
          evaluated++;
          yield [next, problem.evaluate(next)];
          continue;
        }
        for (let j = i + 1; j < slots.length; j++) {
          for (const oj of slots[j]!.options) {
            if (oj === current[j]) continue;
            const next = current.slice();
            next[i] = oi;
            next[j] = oj;
            evaluated++;
            yield [next, problem.evaluate(next)];
          }
        }
      }
    }
  }

  /** Take every single-slot change `accept` allows, pass after pass; when a pass takes none, the first pair it allows. */
  const descend = (accept: (e: Evaluation) => boolean, pairs: boolean) => {
    for (let improved = true; improved; ) {
      improved = false;
      for (const [next, e] of changes(false)) {
        if (accept(e)) [current, cur, improved] = [next, e, true];
      }
      if (improved || !pairs) continue;
      for (const [next, e] of changes(true)) {
        if (accept(e)) {
          [current, cur, improved] = [next, e, true];
          break;
        }
      }
    }
  };

  if (start === 'smallest') {
    // 1'. Smallest assignment; then spend the budget where a byte buys the most time, while it fits.
    descend((e) => e.bytes < cur.bytes || (e.bytes === cur.bytes && e.ms < cur.ms), false);
    for (;;) {
      let pick: { a: O[]; e: Evaluation; rate: number } | undefined;
      for (const [next, e] of changes(false)) {
        const saved = cur.ms - e.ms;
        if (saved <= 0 || e.bytes > budget) continue;
        const rate = saved / Math.max(e.bytes - cur.bytes, 1e-9);
        if (!pick || rate > pick.rate) pick = { a: next, e, rate };
      }
      if (!pick) break;
      current = pick.a;
      cur = pick.e;
    }
    if (cur.bytes <= budget) descend((e) => e.bytes <= budget && better(e, cur, budget), true);
    return { assignment: current, evaluation: cur, solver: 'greedy', evaluated };
  }
  // 1. Fastest assignment, ignoring the budget.
  descend((e) => e.ms < cur.ms || (e.ms === cur.ms && e.bytes < cur.bytes), false);
  // 2. Shed bytes at the best rate of bytes saved per millisecond spent; a change that fits at once beats any that
  // does not, and among those that fit, the faster one.
  while (cur.bytes > budget) {
    let pick: { a: O[]; e: Evaluation; rate: number } | undefined;
    for (const [next, e] of changes(false)) {
      const saved = cur.bytes - e.bytes;
      if (saved <= 0) continue;
      const rate = saved / Math.max(e.ms - cur.ms, 1e-9);
      const fits = e.bytes <= budget;
      const pickFits = pick ? pick.e.bytes <= budget : false;
      if (!pick || (fits && !pickFits) || (fits === pickFits && (fits ? e.ms < pick.e.ms : rate > pick.rate)))
        pick = { a: next, e, rate };
    }
    if (!pick) break; // nothing saves bytes: infeasible, the caller reports it
    current = pick.a;
    cur = pick.e;
  }
  // 3. Faster changes that still fit.
  if (cur.bytes <= budget) descend((e) => e.bytes <= budget && better(e, cur, budget), true);
  return { assignment: current, evaluation: cur, solver: 'greedy', evaluated };
}
