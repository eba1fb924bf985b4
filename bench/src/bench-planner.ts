import { InputError } from '@kstar/core';
import { createTokenizer } from '@kstar/data';
import { createGPT, resolveConfig } from '@kstar/gpt';
import { selectBackend } from '@kstar/kernels';
import { solveExhaustive } from '@kstar/planner';
import type { TrainReport } from '@kstar/trainer/internal';
import {
  calibrate,
  decode,
  fixedBytes,
  loadCalibration,
  machineInfo,
  optimizerEntry,
  planProblem,
  saveCalibration,
  spaceFor,
  writeFileAtomic,
} from '@kstar/trainer/internal';
import { benchFlags } from './bench-flags.ts';
import { benchRun } from './bench-run.ts';

export const BENCH_PLANNER_HELP = `pnpm bench planner --preset P --seq T --batch B --steps N --json FILE [--fraction F] [--candidates K] [--repeats R] [--budget BYTES]

The adaptive planner against fixed plans under the same budget: trains the full-graph baseline for N steps, sets the
budget to F (default 0.25) × its measured peak (or takes --budget, and skips the baseline), trains with
--memory-budget (the planner's choice), finds the K (default 3) fastest fixed plans by prediction that fit the budget,
then times the planner's plan and the fixed ones pinned, in R (default 3) alternating rounds (plan 1, 2, …, 1, 2, …:
a slow spell of a shared machine falls on every plan alike), and writes each plan's median tokens/s over the rounds
(each round: the steps after the first), measured peak and plan, with the planner/best-fixed median ratio.
--backend (default wasm).
`;

interface Row {
  run: string;
  choices: string[] | null;
  steps: number;
  /** Tokens per second over the steps after the first (the first compiles and warms up); the median of `rounds`. */
  tokensPerSecond: number;
  /** Each alternating round's tokens/s (empty for the baseline and the planner's own run). */
  rounds: number[];
  peakBytes: number;
  predictedPeakBytes: number;
  predictedMs: number | null;
  underBudget: boolean | null;
  losses: number[];
}

/** Tokens per second of a run over its steps after the first. */
function laterTokensPerSecond(r: TrainReport, batch: number, seq: number): number {
  const later = r.stepSeconds.slice(1);
  const seconds = later.reduce((a, b) => a + b, 0);
  return later.length ? (later.length * batch * seq) / seconds : r.tokensPerSecond;
}

function rowOf(run: string, r: TrainReport, budget: number | null, batch: number, seq: number): Row {
  return {
    run,
    choices: r.plans?.at(-1)?.choices.slice() ?? null,
    steps: r.steps,
    tokensPerSecond: laterTokensPerSecond(r, batch, seq),
    rounds: [],
    peakBytes: r.memory.peakBytes,
    predictedPeakBytes: r.memory.predictedPeakBytes,
    predictedMs: r.plans?.at(-1)?.predictedMs ?? null,
    underBudget: budget === null ? null : r.memory.peakBytes <= budget,
    losses: r.losses,
  };
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const v = [...values].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

export async function benchPlanner(argv: string[], stderr: { write(s: string): boolean }) {
  const f = benchFlags(
    argv,
    ['preset', 'seq', 'batch', 'steps', 'json', 'fraction', 'candidates', 'backend', 'repeats', 'budget'],
    'planner',
    [],
    "see 'pnpm bench planner --help'",
  );
  const preset = (f.preset as string) ?? 'small';
  const seq = Number(f.seq ?? 1024);
  const batch = Number(f.batch ?? 1);
  const steps = Number(f.steps ?? 2);
  const fraction = Number(f.fraction ?? 0.25);
  const k = Number(f.candidates ?? 3);
  const repeats = Number(f.repeats ?? 3);
  if (!(Number.isInteger(repeats) && repeats >= 1))
    throw new InputError(`--repeats ${f.repeats}: need an integer ≥ 1`, 'E_FLAG');
  const givenBudget = f.budget === undefined ? undefined : Number(f.budget);
  if (givenBudget !== undefined && !(givenBudget > 0))
    throw new InputError(`--budget ${f.budget}: need a byte count > 0`, 'E_FLAG');
  const backend = (f.backend as string) ?? 'wasm';
  if (!(steps >= 2))
    throw new InputError(`--steps ${steps}: need at least 2 (the first is not timed)`, 'E_FLAG');
  const base = { preset, seq, batch, steps, backend, context: seq, activations: '' };
  const log = (l: string) => stderr.write(`${l}\n`);
  const rows: Row[] = [];

  let budget: number;
  if (givenBudget === undefined) {
    log(`bench planner: baseline (full graph), ${preset} T=${seq} B=${batch}, ${steps} steps`);
    const baseline = (await benchRun(base, stderr)).report;
    rows.push(rowOf('baseline', baseline, null, batch, seq));
    budget = Math.floor(fraction * baseline.memory.peakBytes);
  } else budget = Math.floor(givenBudget);

  log(
    `bench planner: planner under ${budget} bytes (${givenBudget === undefined ? `${fraction} × baseline peak` : '--budget'})`,
  );
  const planned = (await benchRun({ ...base, memoryBudget: budget }, stderr)).report;
  const plannerRow = rowOf('planner', planned, budget, batch, seq);
  rows.push(plannerRow);

  // The fastest fixed plans by prediction under the same budget (the same search space), each trained pinned.
  await selectBackend(backend as 'wasm');
  const config = resolveConfig(preset as 'small', {
    vocabSize: createTokenizer('byte').vocabSize,
    blockSize: seq,
  });
  const model = createGPT(config, { seed: 1 });
  const optimizer = optimizerEntry('adamw').create(1e-3, {});
  const fixed = fixedBytes(model, optimizer);
  const space = spaceFor({}, backend);
  const calibration = loadCalibration();
  const costs = await calibrate(model, batch, seq, space, calibration);
  saveCalibration(calibration);
  model.dispose();
  const problem = planProblem({
    config,
    batch,
    seq,
    backend: backend as 'wasm',
    fixed,
    space,
    costs,
    budget,
  });
  const ranked: Array<{ labels: string[]; ms: number }> = [];
  // Enumerate once, keeping the k fastest that fit.
  solveExhaustive({
    ...problem,
    evaluate: (a) => {
      const e = problem.evaluate(a);
      if (e.bytes <= budget) {
        ranked.push({ labels: a.map((o) => o.label), ms: e.ms });
        ranked.sort((x, y) => x.ms - y.ms);
        if (ranked.length > 50 * k) ranked.length = 50 * k;
      }
      return e;
    },
  });
  // Plans that run the same way count once (e.g. a codec on the last segment's input, which is never stored).
  const decodeLabels = (labels: readonly string[]) =>
    decode(problem.slots.map((s, i) => s.options.find((o) => o.label === labels[i])!));
  const runKey = (labels: readonly string[]) => {
    const p = decodeLabels(labels);
    const stores = p.stores.map((s, i) => (i > 0 && i < p.segments.length - 1 ? s : '-'));
    return JSON.stringify([p.mode, p.segments, stores, p.opsLabel]);
  };
  const seen = new Set<string>(plannerRow.choices ? [runKey(plannerRow.choices)] : []);
  const fixedPlans: string[][] = [];
  for (const c of ranked) {
    if (fixedPlans.length >= k) break;
    if (seen.has(runKey(c.labels))) continue;
    seen.add(runKey(c.labels));
    fixedPlans.push(c.labels);
    log(`bench planner: fixed plan ${c.labels.join(' ')} (predicted ${c.ms.toFixed(0)} ms)`);
  }
  // The planner's plan and the fixed ones, pinned, in alternating rounds; each plan's row is its median.
  const timed = [
    ...(plannerRow.choices ? [{ name: 'planner (pinned)', labels: plannerRow.choices }] : []),
    ...fixedPlans.map((labels) => {
      const p = decodeLabels(labels);
      return { name: `fixed ${p.segments.length} segments ${p.opsLabel}`, labels };
    }),
  ];
  const timedRows: Row[] = [];
  for (let round = 1; round <= repeats; round++) {
    for (const [i, t] of timed.entries()) {
      log(`bench planner: round ${round}/${repeats}, ${t.name}: ${t.labels.join(' ')}`);
      const r = (await benchRun({ ...base, memoryBudget: budget }, stderr, { pinPlan: t.labels })).report;
      if (round === 1) timedRows.push({ ...rowOf(t.name, r, budget, batch, seq), rounds: [] });
      const row = timedRows[i]!;
      row.rounds.push(laterTokensPerSecond(r, batch, seq));
      row.peakBytes = Math.max(row.peakBytes, r.memory.peakBytes);
      row.underBudget = row.peakBytes <= budget;
    }
  }
  for (const row of timedRows) row.tokensPerSecond = median(row.rounds);
  rows.push(...timedRows);
  const plannerTimed = timedRows[0]!;
  const fixedRows = timedRows.slice(plannerRow.choices ? 1 : 0);
  const bestFixed = Math.max(plannerTimed.tokensPerSecond, ...fixedRows.map((r) => r.tokensPerSecond));
  const result = {
    benchmark: 'planner',
    machine: { ...machineInfo(), note: '2-core x86-64, shared with parallel jobs' },
    backend,
    preset,
    seq,
    batch,
    steps,
    repeats,
    budgetBytes: budget,
    budgetFraction: givenBudget === undefined ? fraction : null,
    // The planner's plan is one of the candidates: the best fixed plan is at least as fast as it by definition.
    plannerOverBestFixedTokensPerSecond: plannerTimed.tokensPerSecond / bestFixed,
    rows,
  };
  writeFileAtomic(f.json, `${JSON.stringify(result, null, 2)}\n`);
  return { file: f.json, result };
}
