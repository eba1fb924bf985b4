import { better, type Evaluation, type PlanProblem, type Solution } from './problem.ts';

/**
 * Every assignment, in odometer order: the fastest plan whose predicted bytes fit the budget (fewest bytes on a tie).
 * When none fits, the one with the fewest bytes (the caller reports it as infeasible).
 */
export function solveExhaustive<O>(problem: PlanProblem<O>): Solution<O> {
  const { slots } = problem;
  for (const s of slots) {
    if (s.options.length === 0) throw new Error(`plan slot '${s.name}' has no options: give it at least one`);
  }
  const index = slots.map(() => 0);
  let best: { assignment: O[]; evaluation: Evaluation } | undefined;
  let evaluated = 0;
  for (;;) {
    const assignment = slots.map((s, i) => s.options[index[i]!]!);
    const evaluation = problem.evaluate(assignment);
    evaluated++;
    if (better(evaluation, best?.evaluation, problem.budget)) best = { assignment, evaluation };
    let i = slots.length - 1;
    while (i >= 0 && index[i] === slots[i]!.options.length - 1) index[i--] = 0;
    if (i < 0) break;
    index[i]!++;
  }
  return { ...best!, solver: 'exhaustive', evaluated };
}
