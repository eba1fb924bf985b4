import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '@kstar/core';
import type { TrainReport } from '@kstar/trainer/internal';
import { machineInfo } from '@kstar/trainer/internal';
import { benchFlags } from './bench-flags.ts';
import { type RowsBenchmark, writeBenchResults } from './bench-results.ts';
import { kstarCommand } from './kstar-command.ts';

/**
 * The GPU benchmark's configurations: name → `kstar train` flags (on top of preset, seq, batch, steps, backend).
 * To add a row, add one line here, e.g. `'adam8bit+split24': ['--optimizer', 'adam8bit', '--mode', 'segmented',
 * '--blocks-per-segment', '…']` or `'adamw+checkpoint+mst': [...]`; `--configs a,b` picks rows by name.
 */
export const GPU_CONFIGS: Record<string, string[]> = {
  'adamw-full-graph': ['--optimizer', 'adamw', '--mode', 'full'],
  'adamw-segmented': ['--optimizer', 'adamw', '--mode', 'segmented'],
  adam8bit: ['--optimizer', 'adam8bit', '--mode', 'full'],
  'adam8bit-segmented': ['--optimizer', 'adam8bit', '--mode', 'segmented'],
  adafactor: ['--optimizer', 'adafactor', '--mode', 'full'],
  lion: ['--optimizer', 'lion', '--mode', 'full'],
  lomo: ['--optimizer', 'lomo', '--mode', 'segmented'],
  adalomo: ['--optimizer', 'adalomo', '--mode', 'segmented'],
  'adam8bit+split24': ['--optimizer', 'adam8bit', '--master-weights', 'split24', '--mode', 'segmented'],
  'adamw+checkpoint+mst': ['--optimizer', 'adamw', '--activations', 'checkpoint:every,mst'],
  // Every memory plugin at once: 8-bit moments, 24-bit weights, gradient release, checkpointing, MsT, bf16 inputs.
  'adam8bit+split24+checkpoint+mst+compress': [
    '--optimizer',
    'adam8bit',
    '--master-weights',
    'split24',
    '--activations',
    'checkpoint:every,mst,compress:bf16',
  ],
  // The same with coarser MsT chunks (fewer, larger kernels): the speed/memory trade-off of the chunk count.
  'adam8bit+split24+checkpoint+mst-coarse+compress': [
    '--optimizer',
    'adam8bit',
    '--master-weights',
    'split24',
    '--activations',
    'checkpoint:every,mst:mlp=1,attn=256,loss=16,compress:bf16',
  ],
  'adam8bit+split24+checkpoint+mst-medium+compress': [
    '--optimizer',
    'adam8bit',
    '--master-weights',
    'split24',
    '--activations',
    'checkpoint:every,mst:mlp=2,attn=128,loss=32,compress:bf16',
  ],
};

/** `nvidia-smi`'s name, memory and driver of the GPU, or 'unknown' (not an NVIDIA machine). */
export function gpuName(): string {
  try {
    return execFileSync(
      'nvidia-smi',
      ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader'],
      { encoding: 'utf8' },
    ).trim();
  } catch {
    return 'unknown';
  }
}

export interface GpuBenchRow {
  name: string;
  preset: string;
  seq: number;
  batch: number;
  steps: number;
  /** Over all steps, the first (shader compilation) included. */
  tokensPerSecond: number;
  /** Over the steps after the first. */
  tokensPerSecondSteady: number | null;
  /**
   * From the median step time of the steps after the first two (the first compiles every pipeline, the second may
   * still grow the buffer pool): one slow step (a clock change, a stall) does not move it.
   */
  tokensPerSecondMedian: number | null;
  /** Every step's wall time (s), to see where a run's time varies. */
  stepSeconds: number[];
  /** Which round of `--repeats` (0-based): configurations alternate round by round, each run its own process. */
  round: number;
  /** WebGPU: the pool's peak bytes in use over the run (every live buffer); else the ledger's step peak. */
  peakGpuBytesInUse: number;
  /** cuda: the largest step's own device high-water mark (reset at each step's start: model build excluded). */
  stepPeakGpuBytesInUse: number | null;
  /** Peak of unique tensor buffers during a step (the memory ledger). */
  ledgerPeakBytes: number;
  predictedPeakBytes: number;
  /** The WebGPU buffer pool's peak allocated bytes over the run (≤ the in-use high-water mark + the pool bound). */
  gpuBytesAllocated: number | null;
  /** The pool's slack above the in-use high-water mark (KSTAR_WEBGPU_MAX_FREE_BYTES; null: not WebGPU or Infinity). */
  gpuPoolMaxFreeBytes: number | null;
  optimizerStateBytes: number;
  lossAtStart: number;
  lossAtEnd: number;
  /** Every step's loss (runs with different kernels compare them step by step). */
  losses: number[];
  exit: number;
}

function run(args: string[], limitSeconds: number): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const [node, ...kstar] = kstarCommand();
    const child = spawn(node!, [...kstar, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    // SIGINT: kstar stops after the current step and still writes its report.
    const timer = setTimeout(() => child.kill('SIGINT'), limitSeconds * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stderr });
    });
  });
}

export const benchGpu: RowsBenchmark<GpuBenchRow> = async (argv, log) => {
  const values = benchFlags(
    argv,
    [
      'json',
      'preset',
      'seq',
      'batch',
      'steps',
      'backend',
      'configs',
      'limit-seconds',
      'tokenizer',
      'repeats',
    ],
    'gpu',
  );
  const names = String(values.configs ?? Object.keys(GPU_CONFIGS).join(',')).split(',');
  for (const n of names) {
    if (!GPU_CONFIGS[n])
      throw new InputError(
        `unknown GPU benchmark '${n}': use ${Object.keys(GPU_CONFIGS).join(', ')}`,
        'E_FLAG',
      );
  }
  const repeats = Number(values.repeats ?? 1);
  if (!Number.isInteger(repeats) || repeats < 1)
    throw new InputError(`--repeats ${values.repeats} must be a whole number ≥ 1`, 'E_FLAG');
  const preset = String(values.preset ?? 'gpt2-124m');
  const dir = mkdtempSync(join(tmpdir(), 'kstar-gpu-'));
  const rows: GpuBenchRow[] = [];
  const runs = Array.from({ length: repeats }, (_, round) => names.map((name) => ({ name, round }))).flat();
  for (const { name, round } of runs) {
    const report = join(dir, `${name}-${round}.json`);
    const args = [
      'train',
      '--preset',
      preset,
      '--tokenizer',
      String(values.tokenizer ?? (preset === 'gpt2-124m' ? 'gpt2' : 'byte')),
      '--backend',
      String(values.backend ?? 'webgpu'),
      '--seq',
      String(values.seq ?? 1024),
      '--batch',
      String(values.batch ?? 8),
      '--steps',
      String(values.steps ?? 20),
      '--warmup',
      '5',
      '--eval-every',
      '0',
      '--report',
      report,
      ...GPU_CONFIGS[name]!,
    ];
    log(`bench gpu: ${name}: kstar ${args.join(' ')}`);
    const { code, stderr } = await run(args, Number(values['limit-seconds'] ?? 300));
    let r: TrainReport;
    try {
      r = JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
    } catch {
      log(`bench gpu: ${name} failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      continue;
    }
    const tokensPerStep = (r.config.batch as number) * (r.config.seq as number);
    rows.push({
      name,
      preset,
      seq: r.config.seq as number,
      batch: r.config.batch as number,
      steps: r.steps,
      tokensPerSecond: r.tokensPerSecond,
      tokensPerSecondSteady:
        r.stepSeconds && r.stepSeconds.length > 1
          ? ((r.steps - 1) * tokensPerStep) / r.stepSeconds.slice(1).reduce((a, b) => a + b, 0)
          : null,
      tokensPerSecondMedian: medianTokensPerSecond(r.stepSeconds ?? [], tokensPerStep),
      stepSeconds: r.stepSeconds ?? [],
      round,
      peakGpuBytesInUse: r.gpu?.peakBytesInUse ?? r.memory.peakBytes,
      stepPeakGpuBytesInUse: r.gpu?.stepPeakBytesInUse ?? null,
      ledgerPeakBytes: r.memory.peakBytes,
      predictedPeakBytes: r.memory.predictedPeakBytes,
      gpuBytesAllocated: r.gpu?.peakBytesAllocated ?? r.memory.gpuBytesAllocated ?? null,
      gpuPoolMaxFreeBytes: r.gpu?.poolMaxFreeBytes ?? null,
      optimizerStateBytes: r.memory.optimizerStateBytes,
      lossAtStart: r.losses[0]!,
      lossAtEnd: r.losses.at(-1)!,
      losses: r.losses,
      exit: code,
    });
  }
  const gpu = gpuName();
  const machine = { gpu, ...machineInfo() };
  writeBenchResults(values.json, 'gpu', { machine, summary: gpuSummary(rows), rows });
  return { rows, file: values.json };
};

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Tokens per second at the median step time of the steps after the first two (null with fewer than 3 steps). */
export function medianTokensPerSecond(stepSeconds: number[], tokensPerStep: number): number | null {
  const steady = stepSeconds.slice(2);
  return steady.length ? tokensPerStep / median(steady) : null;
}

export interface GpuSummaryRow {
  name: string;
  runs: number;
  /** The median over runs of each run's `tokensPerSecondMedian`, and the range. */
  tokensPerSecondMedian: number | null;
  min: number | null;
  max: number | null;
}

/** One line per configuration over its `--repeats` runs. */
export function gpuSummary(rows: GpuBenchRow[]): GpuSummaryRow[] {
  const names = [...new Set(rows.map((r) => r.name))];
  return names.map((name) => {
    const xs = rows.filter((r) => r.name === name && r.tokensPerSecondMedian !== null);
    const v = xs.map((r) => r.tokensPerSecondMedian!);
    return {
      name,
      runs: xs.length,
      tokensPerSecondMedian: v.length ? median(v) : null,
      min: v.length ? Math.min(...v) : null,
      max: v.length ? Math.max(...v) : null,
    };
  });
}

export function gpuTable(rows: GpuBenchRow[]): string {
  const gib = (b: number | null) => (b === null ? '-' : (b / 2 ** 30).toFixed(2));
  return [
    `${'name'.padEnd(20)}${'steps'.padStart(6)}${'tok/s'.padStart(8)}${'steady'.padStart(8)}${'median'.padStart(8)}${'peak GiB'.padStart(10)}${'step GiB'.padStart(10)}${'pred GiB'.padStart(10)}${'pool GiB'.padStart(10)}${'state GiB'.padStart(10)}  loss`,
    ...rows.map(
      (r) =>
        `${r.name.padEnd(20)}${String(r.steps).padStart(6)}${Math.round(r.tokensPerSecond).toString().padStart(8)}${(r.tokensPerSecondSteady === null ? '-' : Math.round(r.tokensPerSecondSteady).toString()).padStart(8)}${(r.tokensPerSecondMedian === null ? '-' : Math.round(r.tokensPerSecondMedian).toString()).padStart(8)}${gib(r.peakGpuBytesInUse).padStart(10)}${gib(r.stepPeakGpuBytesInUse).padStart(10)}${gib(r.predictedPeakBytes).padStart(10)}${gib(r.gpuBytesAllocated).padStart(10)}${gib(r.optimizerStateBytes).padStart(10)}  ${r.lossAtStart.toFixed(3)}→${r.lossAtEnd.toFixed(3)}`,
    ),
  ].join('\n');
}
