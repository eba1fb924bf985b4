import { InputError, TrainingEngine } from '@kstar/core';
import { createGPT, resolveConfig } from '@kstar/gpt';
import {
  type BackendName,
  flashAttentionParity,
  formatParity,
  fusedKernelParity,
  GPT2_FLASH_CASES,
  GPT2_PARITY_SHAPES,
  guardWebGPUStep,
  inPlaceGradAccumulator,
  type ParityRow,
  selectBackend,
  TINY_FLASH_CASES,
  TINY_PARITY_SHAPES,
} from '@kstar/kernels';
import { machineInfo, optimizerEntry } from '@kstar/trainer/internal';
import * as tf from '@tensorflow/tfjs';
import { benchFlags } from './bench-flags.ts';
import { GPU_CONFIGS, gpuName } from './bench-gpu.ts';
import { type RowsBenchmark, writeBenchResults } from './bench-results.ts';
import { benchRun } from './bench-run.ts';
import {
  formatOptimizerParity,
  type OptimizerParityRow,
  optimizerParity,
  storageKernelParity,
} from './optimizer-parity.ts';

function machine(backend: string) {
  return { backend, gpu: gpuName(), ...machineInfo() };
}

/**
 * `pnpm bench kernels --json FILE [--backend webgpu] [--shapes gpt2|tiny] [--only attention]`: every fused kernel
 * against its tfjs-ops fallback (and float64 at tiny shapes) on the backend, the fused attention's o, lse, dq, dk, dv
 * included; one PASS/FAIL line per kernel output. `--only attention`: the fused attention's rows alone.
 */
export const benchKernels: RowsBenchmark<ParityRow> = async (argv, log) => {
  const values = benchFlags(argv, ['json', 'backend', 'shapes', 'only'], 'kernels');
  const shapes = String(values.shapes ?? 'gpt2');
  if (shapes !== 'gpt2' && shapes !== 'tiny') {
    throw new InputError(`--shapes must be gpt2 or tiny (got '${shapes}')`, 'E_FLAG');
  }
  const only = values.only === undefined ? undefined : String(values.only);
  if (only !== undefined && only !== 'attention') {
    throw new InputError(`--only must be 'attention' (got '${only}')`, 'E_FLAG');
  }
  const { backend } = await selectBackend(String(values.backend ?? 'webgpu') as BackendName);
  const started = performance.now();
  const rows = only
    ? []
    : await guardWebGPUStep(0, () =>
        fusedKernelParity(shapes === 'gpt2' ? GPT2_PARITY_SHAPES : TINY_PARITY_SHAPES),
      );
  rows.push(
    ...(await guardWebGPUStep(0, () =>
      flashAttentionParity(shapes === 'gpt2' ? GPT2_FLASH_CASES : TINY_FLASH_CASES),
    )),
  );
  log(formatParity(rows));
  // Optimizer and split24 kernels: the backend's native kernels against the cpu backend's.
  const optimizerRows: OptimizerParityRow[] =
    backend === 'cpu' || only ? [] : await guardWebGPUStep(0, () => optimizerParity(backend));
  // Storage kernels (pack, quantize, split24 join, add, slice write): native against the fallback on the backend.
  if (!only) optimizerRows.push(...(await guardWebGPUStep(0, () => storageKernelParity())));
  if (optimizerRows.length) log(formatOptimizerParity(optimizerRows));
  writeBenchResults(values.json, 'kernel-parity', {
    machine: machine(backend),
    shapes,
    seconds: (performance.now() - started) / 1000,
    allPass: rows.every((r) => r.pass && r.impl === 'native') && optimizerRows.every((r) => r.pass),
    rows,
    optimizerRows,
  });
  return { rows, file: values.json };
};

export interface ProfileRow {
  kernel: string;
  calls: number;
  totalMs: number;
  share: number;
}

/** `--flag value` pairs of a GPU_CONFIGS row → `kstar train` config fields (`--master-weights` → masterWeights). */
function configSettings(flags: readonly string[]): Record<string, string> {
  const settings: Record<string, string> = {};
  for (let i = 0; i < flags.length; i += 2) {
    settings[flags[i]!.slice(2).replace(/-(\w)/g, (_, c: string) => c.toUpperCase())] = flags[i + 1]!;
  }
  return settings;
}

type ProfileInfo = Awaited<ReturnType<typeof tf.profile>>;

/** Per-kernel rows (sorted, slowest first) from `tf.profile`'s kernels, times divided by `steps`. */
function profileRows(kernels: ProfileInfo['kernels'], steps: number): { rows: ProfileRow[]; total: number } {
  const by = new Map<string, { calls: number; ms: number }>();
  let total = 0;
  for (const k of kernels) {
    const ms = (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0) / steps;
    const e = by.get(k.name) ?? { calls: 0, ms: 0 };
    e.calls++;
    e.ms += ms;
    by.set(k.name, e);
    total += ms;
  }
  const rows = [...by]
    .map(([kernel, e]) => ({
      kernel,
      calls: e.calls / steps,
      totalMs: e.ms,
      share: total > 0 ? e.ms / total : 0,
    }))
    .sort((a, b) => b.totalMs - a.totalMs);
  return { rows, total };
}

/** A profile's table: kernel, calls, ms and share a step; then `footer`. */
function profileTable(rows: readonly ProfileRow[], footer: string): string {
  return [
    `${'kernel'.padEnd(28)}${'calls'.padStart(7)}${'ms'.padStart(10)}${'share'.padStart(8)}`,
    ...rows.map(
      (r) =>
        `${r.kernel.padEnd(28)}${String(r.calls).padStart(7)}${r.totalMs.toFixed(2).padStart(10)}${`${(100 * r.share).toFixed(1)}%`.padStart(8)}`,
    ),
    footer,
  ].join('\n');
}

/**
 * `pnpm bench profile --json FILE [--preset gpt2-124m] [--seq 1024] [--batch 8] [--mode full|segmented]`:
 * per-kernel GPU times of one AdamW training step (`tf.profile`, WebGPU timestamp queries; each kernel is then its own
 * compute pass, so the sum exceeds a normal step's time) after `--warmup` steps, random tokens.
 * `--config NAME [--steps 3]`: a `bench gpu` row instead (GPU_CONFIGS: its optimizer, master weights and activation
 * strategies), trained by `kstar train` in this process; every step is profiled, the first (shader compilation)
 * included, and the table gives kernel times and calls per step (the mean over the steps).
 */
export const benchProfile: RowsBenchmark<ProfileRow> = async (argv, log) => {
  const values = benchFlags(
    argv,
    ['json', 'backend', 'preset', 'seq', 'batch', 'mode', 'warmup', 'config', 'steps'],
    'profile',
  );
  if (values.config !== undefined) return profileConfig(values, log);
  const preset = String(values.preset ?? 'gpt2-124m');
  const seq = Number(values.seq ?? 1024);
  const batchSize = Number(values.batch ?? 8);
  const mode = String(values.mode ?? 'full') as 'full' | 'segmented';
  const warmup = Number(values.warmup ?? 2);
  const { backend } = await selectBackend(String(values.backend ?? 'webgpu') as BackendName);
  const cfg = resolveConfig(preset as Parameters<typeof resolveConfig>[0], { vocabSize: 50257 });
  const model = createGPT(cfg, { seed: 1 });
  const optimizer = optimizerEntry('adamw').create(3e-4, {});
  const engine = new TrainingEngine(model, { optimizer, mode, gradAccumulator: inPlaceGradAccumulator });
  const batch = {
    inputs: tf.randomUniform([batchSize, seq], 0, cfg.vocabSize, 'int32', 1) as tf.Tensor2D,
    targets: tf.randomUniform([batchSize, seq], 0, cfg.vocabSize, 'int32', 2) as tf.Tensor2D,
  };
  const stepMs: number[] = [];
  for (let s = 1; s <= warmup; s++) {
    const t0 = performance.now();
    await guardWebGPUStep(s, () => engine.trainStep(batch));
    stepMs.push(performance.now() - t0);
  }
  const t0 = performance.now();
  const info = await tf.profile(async () => {
    await guardWebGPUStep(warmup + 1, () => engine.trainStep(batch));
    return [];
  });
  const profiledMs = performance.now() - t0;
  const { rows, total } = profileRows(info.kernels, 1);
  log(
    profileTable(
      rows,
      `sum of kernel times ${total.toFixed(1)} ms; warm-up steps ${stepMs.map((m) => m.toFixed(0)).join(', ')} ms; profiled step ${profiledMs.toFixed(0)} ms wall`,
    ),
  );
  writeBenchResults(values.json, 'gpu-profile', {
    machine: machine(backend),
    preset,
    seq,
    batch: batchSize,
    mode,
    optimizer: 'adamw',
    warmupStepMs: stepMs,
    profiledStepWallMs: profiledMs,
    kernelTimeSumMs: total,
    timestampQueries: total > 0,
    rows,
  });
  tf.dispose([batch.inputs, batch.targets]);
  engine.dispose();
  model.dispose();
  return { rows, file: values.json };
};

/** `bench profile --config NAME`: every step of a `bench gpu` row under `tf.profile`, per step. */
async function profileConfig(
  values: Record<string, string | boolean | undefined> & { json: string },
  log: (line: string) => void,
): Promise<{ rows: ProfileRow[]; file: string }> {
  const name = String(values.config);
  const flags = GPU_CONFIGS[name];
  if (!flags)
    throw new InputError(
      `unknown GPU config '${name}': use ${Object.keys(GPU_CONFIGS).join(', ')}`,
      'E_FLAG',
    );
  const preset = String(values.preset ?? 'gpt2-124m');
  const steps = Number(values.steps ?? 3);
  const settings = {
    preset,
    tokenizer: preset === 'gpt2-124m' ? 'gpt2' : 'byte',
    backend: String(values.backend ?? 'webgpu'),
    seq: Number(values.seq ?? 1024),
    batch: Number(values.batch ?? 8),
    steps,
    ...configSettings(flags),
  };
  const t0 = performance.now();
  const info = await tf.profile(async () => {
    await benchRun(settings, process.stderr);
    return [];
  });
  const wallMs = performance.now() - t0;
  const { rows, total } = profileRows(info.kernels, steps);
  log(
    profileTable(
      rows,
      `sum of kernel times ${total.toFixed(1)} ms a step (mean of ${steps}, the first included); ${steps} steps ${wallMs.toFixed(0)} ms wall`,
    ),
  );
  writeBenchResults(values.json, 'gpu-profile', {
    machine: machine(settings.backend),
    config: name,
    settings,
    steps,
    wallMs,
    kernelTimeSumMsPerStep: total,
    timestampQueries: total > 0,
    rows,
  });
  return { rows, file: values.json };
}
