import { readFileSync } from 'node:fs';

/**
 * The golden optimizer trajectories of `fixtures/golden/optimizers.json` (float64, written by the pinned
 * reference implementations; see `fixtures/golden/PROVENANCE.md`). `H` types the hyper-parameters of a run.
 */
export interface GoldenOptimizers<H = Record<string, number | boolean | null>> {
  shapes: Record<string, number[]>;
  init: Record<string, number[]>;
  /** grads[t] is the gradient of step t + 1. */
  grads: Record<string, number[]>[];
  runs: {
    optimizer: string;
    reference: string;
    hparams: H;
    params_used: string[];
    after: { step: number; params: Record<string, number[]> }[];
  }[];
}

/** The parsed file (its hyper-parameters' type is the caller's to name). */
let cached: unknown;

/** The golden optimizer file, read once per process. */
export function loadGoldenOptimizers<H = Record<string, number | boolean | null>>(): GoldenOptimizers<H> {
  cached ??= JSON.parse(
    readFileSync(new URL('../../fixtures/golden/optimizers.json', import.meta.url), 'utf8'),
  );
  return cached as GoldenOptimizers<H>;
}

/** The golden file and its runs of `optimizer`, each with its index; throws when there is none (or not `count`). */
export function goldenRunsOf<H = Record<string, number>>(
  optimizer: string,
  count?: number,
): { golden: GoldenOptimizers<H>; runs: { run: GoldenOptimizers<H>['runs'][number]; index: number }[] } {
  const golden = loadGoldenOptimizers<H>();
  const runs = golden.runs.map((run, index) => ({ run, index })).filter((r) => r.run.optimizer === optimizer);
  if (runs.length === 0 || (count != null && runs.length !== count)) {
    throw new Error(`expected ${count ?? 'a'} ${optimizer} run(s) in the golden file, found ${runs.length}`);
  }
  return { golden, runs };
}
