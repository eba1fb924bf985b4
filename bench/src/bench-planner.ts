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
  parseFlags,
  planProblem,
  saveCalibration,
  spaceFor,
  writeFileAtomic,
} from '@kstar/trainer/internal';
import { benchRun } from './bench-run.ts';

export const BENCH_PLANNER_HELP = `pnpm bench planner --preset P --seq T --batch B --steps N --json FILE [--fraction F] [--candidates K]

The adaptive planner against fixed plans under the same budget: trains the full-graph baseline for N steps, sets the
budget to F (default 0.25) × its measured peak, trains with --memory-budget (the planner's choice), then trains the K
(default 3) fastest fixed plans by prediction that fit the budget (pinned), and writes each run's tokens/s (steps
after the first), measured peak and plan, with the planner/best-fixed tokens/s ratio. --backend (default wasm).
`;

interface Row {
  run: string;
  choices: string[] | null;
  steps: number;
  /** Tokens per second over the steps after the first (the first compiles and warms up). */
  tokensPerSecond: number;
  peakBytes: number;
  predictedPeakBytes: number;
  predictedMs: number | null;
  underBudget: boolean | null;
  losses: number[];
}

function rowOf(run: string, r: TrainReport, budget: number | null, batch: number, seq: number): Row {
  const later = r.stepSeconds.slice(1);
  const seconds = later.reduce((a, b) => a + b, 0);
  return {
    run,
    choices: r.plans?.at(-1)?.choices.slice() ?? null,
    steps: r.steps,
    tokensPerSecond: later.length ? (later.length * batch * seq) / seconds : r.tokensPerSecond,
    peakBytes: r.memory.peakBytes,
    predictedPeakBytes: r.memory.predictedPeakBytes,
    predictedMs: r.plans?.at(-1)?.predictedMs ?? null,
    underBudget: budget === null ? null : r.memory.peakBytes <= budget,
    losses: r.losses,
  };
}

export async function benchPlanner(argv: string[], stderr: { write(s: string): boolean }) {
  const f = parseFlags(
    argv,
    ['preset', 'seq', 'batch', 'steps', 'json', 'fraction', 'candidates', 'backend'],
    "see 'pnpm bench planner --help'",
  );
  if (typeof f.json !== 'string') throw new InputError('pnpm bench planner needs --json FILE', 'E_FLAG');
  const preset = (f.preset as string) ?? 'small';
  const seq = Number(f.seq ?? 1024);
  const batch = Number(f.batch ?? 1);
  const steps = Number(f.steps ?? 2);
  const fraction = Number(f.fraction ?? 0.25);
  const k = Number(f.candidates ?? 3);
  const backend = (f.backend as string) ?? 'wasm';
  if (!(steps >= 2))
    throw new InputError(`--steps ${steps}: need at least 2 (the first is not timed)`, 'E_FLAG');
  const base = { preset, seq, batch, steps, backend, context: seq, activations: '' };
  const log = (l: string) => stderr.write(`${l}\n`);
  const rows: Row[] = [];

  log(`bench planner: baseline (full graph), ${preset} T=${seq} B=${batch}, ${steps} steps`);
  const baseline = (await benchRun(base, stderr)).report;
  rows.push(rowOf('baseline', baseline, null, batch, seq));
  const budget = Math.floor(fraction * baseline.memory.peakBytes);

  log(`bench planner: planner under ${budget} bytes (${fraction} × baseline peak)`);
  const planned = (await benchRun({ ...base, memoryBudget: budget }, stderr)).report;
  rows.push(rowOf('planner', planned, budget, batch, seq));

  // The fastest fixed plans by prediction under the same budget (the same search space), each trained pinned.
  await selectBackend(backend as 'wasm');
  const config = resolveConfig(preset as 'small', {
    vocabSize: createTokenizer('byte').vocabSize,
    blockSize: seq,
  });
  const model = createGPT(config, { seed: 1 });
  const optimizer = optimizerEntry('adamw').create(1e-3, {});
  const fixed = fixedBytes(model, optimizer as never);
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
  const seen = new Set<string>(rows[1]!.choices ? [runKey(rows[1]!.choices)] : []);
  let tried = 0;
  for (const c of ranked) {
    if (tried >= k) break;
    if (seen.has(runKey(c.labels))) continue;
    seen.add(runKey(c.labels));
    tried++;
    log(`bench planner: fixed plan ${c.labels.join(' ')} (predicted ${c.ms.toFixed(0)} ms)`);
    const p = decodeLabels(c.labels);
    const r = (await benchRun({ ...base, memoryBudget: budget }, stderr, { pinPlan: c.labels })).report;
    rows.push(rowOf(`fixed ${p.segments.length} segments ${p.opsLabel}`, r, budget, batch, seq));
  }
  const fixedRows = rows.slice(2);
  const bestFixed = Math.max(rows[1]!.tokensPerSecond, ...fixedRows.map((r) => r.tokensPerSecond));
  const result = {
    benchmark: 'planner',
    machine: { ...machineInfo(), note: '2-core x86-64, shared with parallel jobs' },
    backend,
    preset,
    seq,
    batch,
    steps,
    budgetBytes: budget,
    budgetFraction: fraction,
    plannerOverBestFixedTokensPerSecond: rows[1]!.tokensPerSecond / bestFixed,
    rows,
  };
  writeFileAtomic(f.json, `${JSON.stringify(result, null, 2)}\n`);
  return { file: f.json, result };
}
