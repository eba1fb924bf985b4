import { better, type Evaluation, type PlanProblem, type Solution } from './problem.ts';

/**
 * Greedy local search for problems too large to enumerate. Start from the fastest assignment found by coordinate
 * descent on time alone; while it is over budget, take the single-slot change that saves the most bytes per
 * millisecond it costs (Checkmate's LP relaxation and PyTorch's knapsack rank recomputation the same way: bytes
 * saved per unit of time); then take single-slot changes that make it faster and still fit, until none does.
 */
export function solveGreedy<O>(problem: PlanProblem<O>): Solution<O> {
  const { slots, budget } = problem;
  let evaluated = 0;
  const evaluate = (a: readonly O[]): Evaluation => {
    evaluated++;
    return problem.evaluate(a);
  };
  let current: O[] = slots.map((s) => s.options[0] as O);
  let cur = evaluate(current);
  // 1. Fastest assignment, ignoring the budget.
  for (let improved = true; improved; ) {
    improved = false;
    for (let i = 0; i < slots.length; i++) {
      for (const o of slots[i]!.options) {
        if (o === current[i]) continue;
        const next = current.slice();
        next[i] = o;
        const e = evaluate(next);
        if (e.ms < cur.ms || (e.ms === cur.ms && e.bytes < cur.bytes)) {
          current = next;
          cur = e;
          improved = true;
        }
      }
    }
  }
  // 2. Shed bytes at the best rate of bytes saved per millisecond spent.
  while (cur.bytes > budget) {
    let pick: { a: O[]; e: Evaluation; rate: number } | undefined;
    for (let i = 0; i < slots.length; i++) {
      for (const o of slots[i]!.options) {
        if (o === current[i]) continue;
        const next = current.slice();
        next[i] = o;
        const e = evaluate(next);
        const saved = cur.bytes - e.bytes;
        if (saved <= 0) continue;
        const rate = saved / Math.max(e.ms - cur.ms, 1e-9);
        // A change that fits at once beats any that does not; among those that fit, the faster one.
        const fits = e.bytes <= budget;
        const pickFits = pick ? pick.e.bytes <= budget : false;
        if (
          !pick ||
          (fits && !pickFits) ||
          (fits === pickFits && (fits ? e.ms < pick.e.ms : rate > pick.rate))
        )
          pick = { a: next, e, rate };
      }
    }
    if (!pick) break; // nothing saves bytes: infeasible, the caller reports it
    current = pick.a;
    cur = pick.e;
  }
  // 3. Faster changes that still fit: one slot, then two at once (a global knob often pays only together with a
  // boundary change, e.g. finer chunking that lets a segment keep its activations).
  for (let improved = cur.bytes <= budget; improved; ) {
    improved = false;
    for (let i = 0; i < slots.length; i++) {
      for (const o of slots[i]!.options) {
        if (o === current[i]) continue;
        const next = current.slice();
        next[i] = o;
        const e = evaluate(next);
        if (e.bytes <= budget && better(e, cur, budget)) {
          current = next;
          cur = e;
          improved = true;
        }
      }
    }
    if (improved) continue;
    for (let i = 0; i < slots.length && !improved; i++) {
      for (let j = i + 1; j < slots.length && !improved; j++) {
        for (const oi of slots[i]!.options) {
          if (oi === current[i]) continue;
          for (const oj of slots[j]!.options) {
            if (oj === current[j]) continue;
            const next = current.slice();
            next[i] = oi;
            next[j] = oj;
            const e = evaluate(next);
            if (e.bytes <= budget && better(e, cur, budget)) {
              current = next;
              cur = e;
              improved = true;
            }
          }
        }
      }
    }
  }
  return { assignment: current, evaluation: cur, solver: 'greedy', evaluated };
}
