import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, type OptimizerPlugin } from '@kstar/core';
import { type GPTConfig, paramSpecs, resolveConfig } from '@kstar/gpt';
import { split24 } from '@kstar/master-split24';
import type { TrainReport } from '@kstar/trainer/internal';
import { machineInfo, optimizerEntry, writeFileAtomic } from '@kstar/trainer/internal';
import { benchFlags } from './bench-flags.ts';
import { kstarCommand } from './kstar-command.ts';

export const BENCH_SHARDING_HELP = `pnpm bench sharding --json FILE [--preset tiny] [--ranks 1,2,4] [--stages 0,1,2,3]
  [--optimizer adamw] [--master-weights fp32|split24] [--steps 5] [--batch B] [--seq 32] [--backend cpu]

Trains each (ranks, stage) configuration under mpirun (launched here; 1 rank runs without it) and writes per rank the
measured persistent bytes (parameters, optimizer state), step peak and gathered peak next to the ZeRO prediction,
tokens/s and bytes sent per step; plus a predicted per-rank table for GPT shapes from gpt2-124m to 7B at 8, 64 and
1024 ranks. --batch defaults to the least common multiple of the rank counts.
`;

/** GPT shapes for the predicted table (GPT-2 family and a 7B shape with GPT-2's vocabulary). */
const PLANNED_SHAPES: ReadonlyArray<{ name: string; config: GPTConfig }> = [
  { name: 'gpt2-124m', config: { vocabSize: 50257, nLayer: 12, nHead: 12, nEmbd: 768, blockSize: 1024 } },
  { name: 'gpt2-350m', config: { vocabSize: 50257, nLayer: 24, nHead: 16, nEmbd: 1024, blockSize: 1024 } },
  { name: 'gpt2-1.5b', config: { vocabSize: 50257, nLayer: 48, nHead: 25, nEmbd: 1600, blockSize: 1024 } },
  { name: 'gpt-7b', config: { vocabSize: 50257, nLayer: 32, nHead: 32, nEmbd: 4096, blockSize: 2048 } },
];

export interface PlannedRow {
  shape: string;
  params: number;
  format: string;
  ranks: number;
  stage: number;
  /** Predicted persistent bytes per rank: parameters + optimizer state (ZeRO's 1/N where the stage partitions). */
  persistentBytes: number;
  /** Stage 3: one transformer block's parameters gathered as float32. */
  gatheredSegmentBytes: number;
  /** Bytes per parameter of the persistent state. */
  bytesPerParam: number;
}

/**
 * ZeRO's per-rank formula with K*'s formats, from shapes only: parameters (float32 4 B or split24 3 B per element)
 * divided by N at stage 3, optimizer state (the plugin's `stateBytes` per shape) divided by N from stage 1, plus one
 * gathered block at stage 3. Gradients are released per segment, so they are not a persistent term.
 */
export function plannedRows(
  formats: ReadonlyArray<{ name: string; optimizer: OptimizerPlugin; split24: boolean }>,
  ranks: readonly number[],
): PlannedRow[] {
  const rows: PlannedRow[] = [];
  const mw = split24();
  for (const { name, config } of PLANNED_SHAPES) {
    const specs = paramSpecs(config);
    const psi = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
    const block = specs
      .filter((s) => s.name.startsWith('h0.'))
      .reduce((n, s) => n + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
    for (const f of formats) {
      let params = 0;
      let state = 0;
      for (const s of specs) {
        params += f.split24 ? mw.bytesFor(s.shape) : 4 * s.shape.reduce((a, b) => a * b, 1);
        state += f.optimizer.stateBytes(s.shape, s.role);
      }
      for (const N of ranks) {
        for (const stage of [0, 1, 2, 3]) {
          const persistent = (stage === 3 ? params / N : params) + (stage >= 1 ? state / N : state);
          rows.push({
            shape: name,
            params: psi,
            format: f.name,
            ranks: N,
            stage,
            persistentBytes: Math.round(persistent),
            gatheredSegmentBytes: stage === 3 ? block : 0,
            bytesPerParam: persistent / psi,
          });
        }
      }
    }
  }
  mw.dispose();
  return rows;
}

export interface MeasuredRow {
  ranks: number;
  stage: number;
  tokensPerSecond: number;
  /** Tokens/s of steps 2…n: without step 1's one-time work (WebGPU compiles its shaders there). */
  tokensPerSecondAfterStep1: number | null;
  bytesSentPerStep: number;
  losses: number[];
  perRank: NonNullable<TrainReport['sharding']>['perRank'];
}

function list(text: string | undefined, fallback: number[], flag: string): number[] {
  if (text === undefined) return fallback;
  const values = text.split(',').map(Number);
  if (values.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new InputError(`--${flag} ${text}: pass comma-separated whole numbers, e.g. 1,2,4`, 'E_FLAG');
  }
  return values;
}

export async function benchSharding(
  argv: string[],
  log: (line: string) => void,
): Promise<{ file: string; table: string }> {
  const v = benchFlags(
    argv,
    ['json', 'preset', 'ranks', 'stages', 'optimizer', 'master-weights', 'steps', 'batch', 'seq', 'backend'],
    'sharding',
    [],
    BENCH_SHARDING_HELP,
  );
  const ranks = list(v.ranks as string | undefined, [1, 2, 4], 'ranks');
  const stages = list(v.stages as string | undefined, [0, 1, 2, 3], 'stages');
  if (stages.some((s) => s > 3)) throw new InputError(`--stages ${v.stages}: ZeRO stages are 0..3`, 'E_FLAG');
  const lcm = ranks.reduce((a, b) => (a * b) / gcd(a, b), 1);
  const batch = Number(v.batch ?? lcm);
  const dir = mkdtempSync(join(tmpdir(), 'kstar-bench-sharding-'));
  const measured: MeasuredRow[] = [];
  for (const N of ranks) {
    for (const stage of stages) {
      const report = join(dir, `r${N}-z${stage}.json`);
      const train = [
        ...kstarCommand(),
        'train',
        '--sharding',
        `zero${stage}`,
        '--preset',
        String(v.preset ?? 'tiny'),
        '--optimizer',
        String(v.optimizer ?? 'adamw'),
        '--master-weights',
        String(v['master-weights'] ?? 'fp32'),
        '--steps',
        String(v.steps ?? 5),
        '--batch',
        String(batch),
        '--seq',
        String(v.seq ?? 32),
        '--backend',
        String(v.backend ?? 'cpu'),
        '--eval-every',
        '0',
        '--warmup',
        '0',
        '--sample-tokens',
        '0',
        '--report',
        report,
      ];
      const cmd =
        N === 1 ? train : ['mpirun', '--allow-run-as-root', '--oversubscribe', '-np', String(N), ...train];
      log(`bench sharding: ${N} rank(s), zero${stage}`);
      const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
      if (r.status !== 0) {
        throw new InputError(
          `bench sharding: ${N} ranks, zero${stage} failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`,
        );
      }
      const rep = JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
      measured.push({
        ranks: N,
        stage,
        tokensPerSecond: rep.tokensPerSecond,
        tokensPerSecondAfterStep1:
          rep.stepSeconds.length > 1
            ? ((rep.stepSeconds.length - 1) * batch * Number(v.seq ?? 32)) /
              rep.stepSeconds.slice(1).reduce((a, b) => a + b, 0)
            : null,
        bytesSentPerStep: rep.sharding!.bytesSentPerStep,
        losses: rep.losses,
        perRank: rep.sharding!.perRank,
      });
    }
  }
  const lr = 1e-3;
  const planned = plannedRows(
    [
      { name: 'adamw fp32', optimizer: optimizerEntry('adamw').create(lr, {}), split24: false },
      { name: 'adam8bit + split24', optimizer: optimizerEntry('adam8bit').create(lr, {}), split24: true },
    ],
    [8, 64, 1024],
  );
  const preset = resolveConfig(String(v.preset ?? 'tiny') as 'tiny');
  writeFileAtomic(
    v.json,
    `${JSON.stringify(
      {
        benchmark: 'sharding',
        machine: { ...machineInfo(), note: 'mpirun --oversubscribe: every rank shares this machine’s cores' },
        settings: {
          preset: v.preset ?? 'tiny',
          model: preset,
          batch,
          seq: Number(v.seq ?? 32),
          steps: Number(v.steps ?? 5),
          optimizer: v.optimizer ?? 'adamw',
          masterWeights: v['master-weights'] ?? 'fp32',
        },
        measured,
        planned,
      },
      null,
      2,
    )}\n`,
  );
  const lines = ['ranks stage  tokens/s  sent/step  rank0 params  rank0 state  (measured = predicted?)'];
  for (const m of measured) {
    const p = m.perRank[0]!.memory;
    lines.push(
      `${String(m.ranks).padStart(5)} ${String(m.stage).padStart(5)} ${m.tokensPerSecond.toFixed(1).padStart(9)} ${String(m.bytesSentPerStep).padStart(10)} ${String(p.paramBytes).padStart(13)} ${String(p.optimizerStateBytes).padStart(12)}  ${p.paramBytes === p.predicted.params && p.optimizerStateBytes === p.predicted.optimizerState ? 'yes' : 'NO'}`,
    );
  }
  return { file: v.json, table: lines.join('\n') };
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
