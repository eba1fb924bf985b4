import { InputError } from '@kstar/core';
import { solveExhaustive } from './exhaustive.ts';
import { solveGreedy } from './greedy.ts';
import { type PlanProblem, type Solution, searchSpaceSize } from './problem.ts';

export interface SolveOptions {
  /** Largest search space enumerated exactly; above it the greedy solver runs. Default 200,000. */
  exhaustiveLimit?: number;
}

export const DEFAULT_EXHAUSTIVE_LIMIT = 200_000;

/** No plan fits the budget: the smallest predicted peak found, and how the search went. */
export class InfeasibleBudgetError extends InputError {
  readonly smallestBytes: number;
  readonly solver: Solution<unknown>['solver'];
  readonly searched: number;
  constructor(budget: number, smallestBytes: number, solver: Solution<unknown>['solver'], searched: number) {
    super(
      `memory budget ${Math.round(budget).toLocaleString('en-US')} bytes is below every plan's predicted peak (smallest ${Math.round(smallestBytes).toLocaleString('en-US')} bytes, ${solver} search over ${searched.toLocaleString('en-US')} plans): raise the budget, or lower the batch or the sequence length`,
      'E_MEMORY_BUDGET',
    );
    this.smallestBytes = smallestBytes;
    this.solver = solver;
    this.searched = searched;
  }
}

/**
 * The fastest predicted plan that fits the budget: exact enumeration when the space is at most `exhaustiveLimit`
 * assignments, greedy above. InputError (E_MEMORY_BUDGET) naming the smallest predicted peak when nothing fits.
 */
export function solve<O>(problem: PlanProblem<O>, options: SolveOptions = {}): Solution<O> {
  const limit = options.exhaustiveLimit ?? DEFAULT_EXHAUSTIVE_LIMIT;
  const size = searchSpaceSize(problem.slots);
  const solution = size <= limit ? solveExhaustive(problem) : solveGreedy(problem);
  if (solution.evaluation.bytes > problem.budget) {
    throw new InfeasibleBudgetError(
      problem.budget,
      solution.evaluation.bytes,
      solution.solver,
      solution.evaluated,
    );
  }
  return solution;
}
