import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { InputError } from '@kstar/core';
import { parseTrainConfig } from './config.ts';
import { ProgressBar } from './progress.ts';
import { prepareRun, train } from './train.ts';

export const BENCH_HELP = `kstar bench train --json FILE [options]

Runs \`kstar train\` for every backend × mode given and writes one row per run:
{backend, mode, preset, batch, seq, steps, tokensPerSecond, peakBytes, predictedPeakBytes, paramBytes, gradBytes,
 optimizerStateBytes, activationPeakBytes, firstLoss, lastLoss, valLoss, wallSeconds}, plus the machine.

  --backends LIST     comma-separated (default wasm,cpu)
  --modes LIST        comma-separated (default full,segmented)
  --preset P          (default tiny)     --optimizer NAME (default adamw)
  --steps N           steps per run (default 20)   --batch B (default 16)   --seq T (default: preset's)
  --json FILE         where to write the results (required)
`;

export interface BenchRow {
  backend: string;
  mode: string;
  preset: string;
  optimizer: string;
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

export async function benchTrain(
  argv: string[],
  stderr: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean },
): Promise<{ rows: BenchRow[]; file: string }> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        backends: { type: 'string' },
        modes: { type: 'string' },
        preset: { type: 'string' },
        optimizer: { type: 'string' },
        steps: { type: 'string' },
        batch: { type: 'string' },
        seq: { type: 'string' },
        json: { type: 'string' },
      },
      strict: true,
    }));
  } catch (e) {
    throw new InputError(`${(e as Error).message.split('\n')[0]} (see 'kstar bench --help')`, 'E_FLAG');
  }
  if (typeof values.json !== 'string') throw new InputError('kstar bench train needs --json FILE', 'E_FLAG');
  const backends = String(values.backends ?? 'wasm,cpu').split(',');
  const modes = String(values.modes ?? 'full,segmented').split(',');
  const rows: BenchRow[] = [];
  for (const backend of backends) {
    for (const mode of modes) {
      const config = parseTrainConfig(
        {
          backend,
          mode,
          preset: values.preset ?? 'tiny',
          optimizer: values.optimizer ?? 'adamw',
          steps: Number(values.steps ?? 20),
          batch: Number(values.batch ?? 16),
          ...(values.seq !== undefined ? { seq: Number(values.seq) } : {}),
          evalEvery: 0,
          warmup: 0,
        },
        'bench',
      );
      const run = prepareRun(config);
      const report = await train(run, { log: new ProgressBar(stderr) });
      const m = report.memory;
      rows.push({
        backend: report.backend,
        mode,
        preset: config.preset,
        optimizer: config.optimizer,
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
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    node: process.version,
  };
  writeFileSync(
    values.json,
    `${JSON.stringify({ kind: 'train', date: new Date().toISOString(), machine, rows }, null, 2)}\n`,
  );
  return { rows, file: values.json };
}

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
