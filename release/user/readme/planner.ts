// README: packages/planner/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
const slots = [{ name: 'boundary 1', options: ['keep', 'recompute'] }];
const budget = 1000;
const bytes = 800;
const ms = 2;
const segments = [{ choice: 'keep', predictedBytes: 800, predictedMs: 2 }];
// #region readme
import { solve, PlanLog, Calibration, medianMs } from '@kstar/planner';
const solution = solve({ slots, budget, evaluate: (a) => ({ bytes, ms, segments }) });
// solution.solver: 'exhaustive' (≤ 200,000 assignments) or 'greedy'; InfeasibleBudgetError when nothing fits
// #endregion
