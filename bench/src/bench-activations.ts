import { InputError } from '@kstar/core';
import { type GPTConfig, paramSpecs, resolveConfig } from '@kstar/gpt';
import {
  type ActivationSpec,
  type FixedBytes,
  optimizerEntry,
  parseActivations,
  parseBytes,
  planActivations,
} from '@kstar/trainer/internal';
import { benchFlags } from './bench-flags.ts';
import { writeBenchResults } from './bench-results.ts';
import { benchRun, type Err } from './bench-run.ts';

export const BENCH_ACTIVATIONS_HELP = `pnpm bench activations --preset P --seq T[,T…] --steps N --batch B --json FILE
pnpm bench activations --max-seq --memory-budget BYTES --preset P --batch B --steps N --json FILE

Trains the strategies baseline (full graph), checkpoint (plan every), mst, checkpoint+mst and checkpoint+mst+compress
(int8 unless --compress bf16) for N steps at each T, with the model's context sized to T, and writes rows
{strategy, seq, batch, loss, tokensPerSecond, activationPeakBytes, peakBytes, predictedPeakBytes, …}.
--max-seq finds per strategy the longest T whose predicted step peak fits the budget (binary search on predictions,
the planner picking the checkpoint plan and MsT chunks), then verifies it with measured steps under the budget
(stepping T down by 3% while the measured peak exceeds it, at most 5 times), and trains every strategy at the baseline's longest T
for a tokens/s comparison.
  --backend B (default wasm)  --strategies LIST (default all five)  --optimizer NAME (default adamw)
  --max T (search ceiling, default 16384)  --verify-steps N (measured steps at the found T, default 1)
`;

export const STRATEGIES: Record<string, (compressFormat: string) => string> = {
  baseline: () => '',
  checkpoint: () => 'checkpoint:every',
  mst: () => 'mst',
  'checkpoint+mst': () => 'checkpoint:every,mst',
  'checkpoint+mst+compress': (f) => `checkpoint:every,mst,compress:${f}`,
};

export interface ActivationBenchRow {
  strategy: string;
  activations: string;
  seq: number;
  batch: number;
  steps: number;
  loss: number;
  tokensPerSecond: number;
  activationPeakBytes: number;
  peakBytes: number;
  predictedPeakBytes: number;
  predictedActivationBytes: number;
  gradBytes: number;
  paramBytes: number;
  optimizerStateBytes: number;
  plugins: Array<{ name: string; options: Record<string, unknown> }>;
}

async function runOne(
  base: Record<string, unknown>,
  strategy: string,
  activations: string,
  seq: number,
  stderr: Err,
): Promise<ActivationBenchRow> {
  const { config, report } = await benchRun(
    {
      ...base,
      seq,
      context: seq,
      ...(activations ? { activations } : {}),
    },
    stderr,
  );
  const m = report.memory;
  const act = Object.entries(m.predicted).find(([k]) => k.startsWith('activations:'))?.[1] ?? 0;
  return {
    strategy,
    activations,
    seq,
    batch: config.batch,
    steps: report.steps,
    loss: report.losses.at(-1)!,
    tokensPerSecond: report.tokensPerSecond,
    activationPeakBytes: m.activationPeakBytes,
    peakBytes: m.peakBytes,
    predictedPeakBytes: m.predictedPeakBytes,
    predictedActivationBytes: act,
    gradBytes: m.gradBytes,
    paramBytes: m.paramBytes,
    optimizerStateBytes: m.optimizerStateBytes,
    plugins: report.plugins
      .filter((p) => p.kind === 'activation')
      .map((p) => ({ name: p.name, options: p.options })),
  };
}

/** Parameters, optimizer state and tied waiting gradients of a GPT config, without allocating it. */
function fixedFor(config: GPTConfig, optimizer: string): FixedBytes {
  const opt = optimizerEntry(optimizer).create(1e-3, {});
  let params = 0;
  let state = 0;
  for (const s of paramSpecs(config)) {
    params += 4 * s.shape.reduce((a, b) => a * b, 1);
    state += opt.stateBytes(s.shape, s.role);
  }
  return {
    params,
    optimizerState: state,
    // The tied wte is read by the embedding and the head: its partial gradient waits when they are apart.
    waitingGrads: (segments) => (segments && segments.length > 1 ? 4 * config.vocabSize * config.nEmbd : 0),
  };
}

/** Whether a step of batch × seq is predicted to fit the budget with this spec (the planner may pick parameters). */
function fits(
  preset: string,
  spec: ActivationSpec,
  batch: number,
  seq: number,
  budget: number,
  backend: string,
  optimizer: string,
): { ok: boolean; predictedPeakBytes: number } {
  const config = resolveConfig(preset as 'small', { blockSize: seq });
  try {
    const p = planActivations({
      spec,
      config,
      batch,
      seq,
      backend: backend as 'wasm',
      userMode: undefined,
      defaultSegments: undefined,
      fixed: fixedFor(config, optimizer),
      budget,
    });
    return { ok: true, predictedPeakBytes: p.predictedPeakBytes };
  } catch (e) {
    if (e instanceof InputError) return { ok: false, predictedPeakBytes: Number.NaN };
    throw e;
  }
}

export async function benchActivations(
  argv: string[],
  stderr: Err,
): Promise<{ file: string; table: string }> {
  const values = benchFlags(
    argv,
    [
      'preset',
      'seq',
      'steps',
      'batch',
      'json',
      'backend',
      'strategies',
      'memory-budget',
      'compress',
      'optimizer',
      'max',
      'verify-steps',
    ],
    'activations',
    ['max-seq'],
  );
  const preset = String(values.preset ?? 'small');
  const batch = Number(values.batch ?? 1);
  const steps = Number(values.steps ?? 3);
  const backend = String(values.backend ?? 'wasm');
  const optimizer = String(values.optimizer ?? 'adamw');
  const compressFormat = String(values.compress ?? 'int8');
  const names = String(values.strategies ?? Object.keys(STRATEGIES).join(',')).split(',');
  for (const n of names) {
    if (!STRATEGIES[n]) {
      throw new InputError(
        `--strategies: '${n}' is unknown: use ${Object.keys(STRATEGIES).join(', ')}`,
        'E_FLAG',
      );
    }
  }
  const base = { preset, batch, steps, backend, optimizer };
  const lines: string[] = [];
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  if (values['max-seq'] !== true) {
    const seqs = String(values.seq ?? '256')
      .split(',')
      .map(Number);
    const rows: ActivationBenchRow[] = [];
    for (const seq of seqs) {
      for (const n of names) {
        const row = await runOne(base, n, STRATEGIES[n]!(compressFormat), seq, stderr);
        rows.push(row);
        // Written after every run, so a long benchmark stopped part-way keeps what it measured.
        writeBenchResults(values.json, 'activations', { preset, backend, complete: false, rows });
        lines.push(
          `${n.padEnd(26)} T ${String(seq).padStart(5)}  act ${mib(row.activationPeakBytes).padStart(8)} MiB (pred ${mib(row.predictedActivationBytes)})  peak ${mib(row.peakBytes)} MiB (pred ${mib(row.predictedPeakBytes)})  ${Math.round(row.tokensPerSecond)} tok/s  loss ${row.loss.toFixed(3)}`,
        );
      }
    }
    writeBenchResults(values.json, 'activations', { preset, backend, complete: true, rows });
    return { file: values.json, table: lines.join('\n') };
  }
  if (values['memory-budget'] === undefined) {
    throw new InputError('pnpm bench activations --max-seq needs --memory-budget BYTES', 'E_FLAG');
  }
  const budget = parseBytes(String(values['memory-budget']));
  const ceiling = Number(values.max ?? 16384);
  const verifySteps = Number(values['verify-steps'] ?? 1);
  const search: Array<Record<string, unknown>> = [];
  for (const n of names) {
    const spec = parseActivations(STRATEGIES[n]!(compressFormat).replace('checkpoint:every', 'checkpoint'));
    // Largest T with a fitting prediction (the planner picks the plan and the chunks for each T).
    let lo = 0;
    let hi = ceiling;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi + 1) / 2);
      if (fits(preset, spec, batch, mid, budget, backend, optimizer).ok) lo = mid;
      else hi = mid - 1;
    }
    const predictedMax = lo;
    let verified: ActivationBenchRow | undefined;
    let T = predictedMax;
    const tries: Array<{ seq: number; peakBytes: number }> = [];
    for (let k = 0; k < 6 && T >= 1; k++) {
      const activations = STRATEGIES[n]!(compressFormat).replace('checkpoint:every', 'checkpoint');
      const row = await runOne(
        { ...base, steps: verifySteps, memoryBudget: budget },
        n,
        activations,
        T,
        stderr,
      );
      tries.push({ seq: T, peakBytes: row.peakBytes });
      if (row.peakBytes <= budget) {
        verified = row;
        break;
      }
      T = Math.floor(T * 0.97);
    }
    search.push({
      strategy: n,
      budget,
      maxSeqPredicted: predictedMax,
      maxSeqVerified: verified?.seq ?? null,
      verifiedRun: verified ?? null,
      tries,
    });
    writeBenchResults(values.json, 'activations-max-seq', {
      preset,
      backend,
      batch,
      budget,
      complete: false,
      search,
    });
    lines.push(
      `${n.padEnd(26)} longest T predicted ${predictedMax}, verified ${verified?.seq ?? 'none'} (measured peak ${verified ? mib(verified.peakBytes) : '-'} MiB of ${mib(budget)} MiB)`,
    );
  }
  // tokens/s of every strategy at the baseline's longest (verified) T.
  const baseT = (search.find((s) => s.strategy === 'baseline')?.maxSeqVerified as number | null) ?? null;
  const atBaseline: ActivationBenchRow[] = [];
  if (baseT) {
    for (const n of names) {
      const row = await runOne(
        base,
        n,
        STRATEGIES[n]!(compressFormat).replace('checkpoint:every', 'checkpoint'),
        baseT,
        stderr,
      );
      atBaseline.push(row);
      lines.push(`${n.padEnd(26)} at baseline's T ${baseT}: ${Math.round(row.tokensPerSecond)} tok/s`);
    }
  }
  writeBenchResults(values.json, 'activations-max-seq', {
    preset,
    backend,
    batch,
    budget,
    complete: true,
    search,
    atBaselineSeq: { seq: baseT, rows: atBaseline },
  });
  return { file: values.json, table: lines.join('\n') };
}
