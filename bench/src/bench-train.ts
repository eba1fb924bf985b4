import { InputError } from '@kstar/core';
import { ProgressBar, parseTrainConfig, prepareRun, train } from '@kstar/trainer/internal';
import { benchFlags } from './bench-flags.ts';
import { type RowsBenchmark, writeBenchResults } from './bench-results.ts';
import { benchRun, type Err } from './bench-run.ts';

export const BENCH_TRAIN_HELP = `pnpm bench train --json FILE [options]

Runs \`kstar train\` for every backend × mode given and writes one row per run:
{backend, mode, preset, batch, seq, steps, tokensPerSecond, peakBytes, predictedPeakBytes, paramBytes, gradBytes,
 optimizerStateBytes, activationPeakBytes, firstLoss, lastLoss, valLoss, wallSeconds}, plus the machine.

  --backends LIST     comma-separated (default wasm,cpu)
  --modes LIST        comma-separated (default full,segmented)
  --preset P          (default tiny)     --optimizer NAME (default adamw)   --master-weights fp32|split24
  --steps N           steps per run (default 20)   --batch B (default 16)   --seq T (default: preset's)
  --json FILE         where to write the results (required)
`;

export const BENCH_OPTIMIZERS_HELP = `pnpm bench optimizers --json FILE [--preset tiny|small] [--steps N] [--optimizers LIST] [--lr NAME=X,…]

Trains AdamW and every other optimizer K* has on the Brown corpus with the same seed, each at its documented default
learning rate (override with --lr came=1e-4,…; repeat a name to sweep: --lr came=1e-4,came=3e-5) and writes per run:
{optimizer, lr, valLoss, valLossVsAdamW, tokensPerSecond, optimizerStateBytes, stateBytesPerParam, peakBytes, ...}.
Defaults: preset tiny, 300 steps, batch 8, wasm backend. A name OPTIMIZER+MASTER (e.g. adam8bit+split24) runs the
optimizer with those master weights; the default list ends with adam8bit+split24.
`;

export interface BenchRow {
  backend: string;
  mode: string;
  preset: string;
  optimizer: string;
  masterWeights: string;
  batch: number;
  seq: number;
  steps: number;
  tokensPerSecond: number;
  peakBytes: number;
  predictedPeakBytes: number;
  paramBytes: number;
  gradBytes: number;
  optimizerStateBytes: number;
  activationPeakBytes: number;
  firstLoss: number;
  lastLoss: number;
  valLoss: number | null;
  wallSeconds: number;
}

export const benchTrain: RowsBenchmark<BenchRow, Err> = async (argv, stderr) => {
  const values = benchFlags(
    argv,
    ['backends', 'modes', 'preset', 'optimizer', 'master-weights', 'steps', 'batch', 'seq', 'json'],
    'train',
  );
  const backends = String(values.backends ?? 'wasm,cpu').split(',');
  const modes = String(values.modes ?? 'full,segmented').split(',');
  const rows: BenchRow[] = [];
  for (const backend of backends) {
    for (const mode of modes) {
      const { config, run, report } = await benchRun(
        {
          backend,
          mode,
          preset: values.preset ?? 'tiny',
          optimizer: values.optimizer ?? 'adamw',
          masterWeights: values['master-weights'] ?? 'fp32',
          steps: Number(values.steps ?? 20),
          batch: Number(values.batch ?? 16),
          ...(values.seq !== undefined ? { seq: Number(values.seq) } : {}),
        },
        stderr,
      );
      const m = report.memory;
      rows.push({
        backend: report.backend,
        mode,
        preset: config.preset,
        optimizer: config.optimizer,
        masterWeights: config.masterWeights,
        batch: config.batch,
        seq: run.seq,
        steps: report.steps,
        tokensPerSecond: report.tokensPerSecond,
        peakBytes: m.peakBytes,
        predictedPeakBytes: m.predictedPeakBytes,
        paramBytes: m.paramBytes,
        gradBytes: m.gradBytes,
        optimizerStateBytes: m.optimizerStateBytes,
        activationPeakBytes: m.activationPeakBytes,
        firstLoss: report.losses[0]!,
        lastLoss: report.losses.at(-1)!,
        valLoss: report.valLosses.at(-1)?.loss ?? null,
        wallSeconds: report.wallSeconds,
      });
    }
  }
  writeBenchResults(values.json, 'train', { rows });
  return { rows, file: values.json };
};

export function benchTable(rows: BenchRow[]): string {
  const head = `${'backend'.padEnd(8)}${'mode'.padEnd(11)}${'tokens/s'.padStart(10)}${'peak MiB'.padStart(10)}${'pred MiB'.padStart(10)}${'act MiB'.padStart(10)}${'grad MiB'.padStart(10)}  loss`;
  const mib = (b: number) => (b / 2 ** 20).toFixed(2).padStart(10);
  return [
    head,
    ...rows.map(
      (r) =>
        `${r.backend.padEnd(8)}${r.mode.padEnd(11)}${Math.round(r.tokensPerSecond).toString().padStart(10)}${mib(r.peakBytes)}${mib(r.predictedPeakBytes)}${mib(r.activationPeakBytes)}${mib(r.gradBytes)}  ${r.firstLoss.toFixed(3)} → ${r.lastLoss.toFixed(3)}`,
    ),
  ].join('\n');
}

export interface OptimizerBenchRow {
  optimizer: string;
  lr: number;
  preset: string;
  backend: string;
  steps: number;
  batch: number;
  seq: number;
  valLoss: number;
  valLossVsAdamW: number | null;
  firstLoss: number;
  lastLoss: number;
  tokensPerSecond: number;
  optimizerStateBytes: number;
  stateBytesPerParam: number;
  peakBytes: number;
  paramBytes: number;
  wallSeconds: number;
}

export const benchOptimizers: RowsBenchmark<OptimizerBenchRow, Err> = async (argv, stderr) => {
  const values = benchFlags(
    argv,
    ['preset', 'steps', 'batch', 'backend', 'optimizers', 'lr', 'json'],
    'optimizers',
  );
  const { OPTIMIZERS } = await import('@kstar/trainer/internal');
  const names = String(values.optimizers ?? [...Object.keys(OPTIMIZERS), 'adam8bit+split24'].join(',')).split(
    ',',
  );
  if (!names.includes('adamw')) names.unshift('adamw'); // the reference every optimizer is measured against
  const runs: Array<{ optimizer: string; lr?: number }> = [];
  const overrides = typeof values.lr === 'string' ? values.lr.split(',') : [];
  for (const name of names) {
    const lrs = overrides
      .map((o) => o.split('='))
      .filter(([n]) => n === name)
      .map(([, v]) => Number(v));
    if (lrs.some((x) => !Number.isFinite(x) || x <= 0))
      throw new InputError(`--lr ${values.lr}: learning rates must be positive numbers`, 'E_FLAG');
    if (lrs.length === 0) runs.push({ optimizer: name });
    for (const lr of lrs) runs.push({ optimizer: name, lr });
  }
  const rows: OptimizerBenchRow[] = [];
  for (const r of runs) {
    const [optimizer, masterWeights] = r.optimizer.split('+');
    const config = parseTrainConfig(
      {
        backend: values.backend ?? 'wasm',
        preset: values.preset ?? 'tiny',
        optimizer,
        ...(masterWeights !== undefined ? { masterWeights } : {}),
        steps: Number(values.steps ?? 300),
        batch: Number(values.batch ?? 8),
        evalEvery: Number(values.steps ?? 300),
        evalBatches: 8,
        ...(r.lr !== undefined ? { lr: r.lr } : {}),
      },
      'bench',
    );
    const run = prepareRun(config);
    const report = await train(run, { log: new ProgressBar(stderr, 50) });
    const m = report.memory;
    rows.push({
      optimizer: r.optimizer,
      lr: run.lr,
      preset: config.preset,
      backend: report.backend,
      steps: report.steps,
      batch: config.batch,
      seq: run.seq,
      valLoss: report.valLosses.at(-1)!.loss,
      valLossVsAdamW: null,
      firstLoss: report.losses[0]!,
      lastLoss: report.losses.at(-1)!,
      tokensPerSecond: report.tokensPerSecond,
      optimizerStateBytes: m.optimizerStateBytes,
      stateBytesPerParam: m.optimizerStateBytes / report.model.params,
      peakBytes: m.peakBytes,
      paramBytes: m.paramBytes,
      wallSeconds: report.wallSeconds,
    });
  }
  const base = rows.find((r) => r.optimizer === 'adamw');
  if (base) for (const r of rows) r.valLossVsAdamW = r.valLoss / base.valLoss - 1;
  writeBenchResults(values.json, 'optimizers', { rows });
  return { rows, file: values.json };
};

export function optimizerTable(rows: OptimizerBenchRow[]): string {
  const head = `${'optimizer'.padEnd(18)}${'lr'.padStart(9)}${'val loss'.padStart(10)}${'vs AdamW'.padStart(10)}${'tokens/s'.padStart(10)}${'state B/param'.padStart(15)}${'peak MiB'.padStart(10)}`;
  return [
    head,
    ...rows.map(
      (r) =>
        `${r.optimizer.padEnd(18)}${r.lr.toExponential(1).padStart(9)}${r.valLoss.toFixed(4).padStart(10)}${(r.valLossVsAdamW === null ? '-' : `${(100 * r.valLossVsAdamW).toFixed(2)}%`).padStart(10)}${Math.round(r.tokensPerSecond).toString().padStart(10)}${r.stateBytesPerParam.toFixed(3).padStart(15)}${(r.peakBytes / 2 ** 20).toFixed(2).padStart(10)}`,
    ),
  ].join('\n');
}
