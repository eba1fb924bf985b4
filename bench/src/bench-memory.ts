import { type GPTConfig, paramSpecs } from '@kstar/gpt';
import { split24Bytes } from '@kstar/kernels';
import { optimizerEntry } from '@kstar/trainer/internal';
import { benchFlags } from './bench-flags.ts';
import { type RowsBenchmark, writeBenchResults } from './bench-results.ts';
import { benchRun, type Err } from './bench-run.ts';

/** Tensors under this many elements keep float32 state in 8-bit Adam (bitsandbytes' min_8bit_size). */
const SMALL = 4096;

export interface MemoryBenchRow {
  preset: string;
  optimizer: string;
  masterWeights: string;
  mode: string;
  gradientRelease: boolean;
  backend: string;
  batch: number;
  seq: number;
  steps: number;
  params: number;
  /** Measured (ledger, unique buffers). */
  paramBytes: number;
  optimizerStateBytes: number;
  persistentBytes: number;
  persistentBytesPerParam: number;
  gradPeakBytes: number;
  peakBytes: number;
  /** Where the persistent bytes go, from the parameter shapes (its sum is checked against the measurement). */
  breakdown: Record<string, number>;
  breakdownMatchesMeasured: boolean;
  smallTensors: { count: number; params: number };
  wallSeconds: number;
}

function breakdownOf(config: GPTConfig, optimizer: string, masterWeights: string, lr: number) {
  const plugin = optimizerEntry(optimizer).create(lr, {});
  const b: Record<string, number> = {};
  const add = (k: string, v: number) => {
    b[k] = (b[k] ?? 0) + v;
  };
  let count = 0;
  let params = 0;
  for (const spec of paramSpecs(config)) {
    const n = spec.shape.reduce((a, c) => a * c, 1);
    if (masterWeights === 'split24') {
      add('weights: bf16 halves', 4 * Math.ceil(n / 2));
      add('weights: int8 corrections', split24Bytes(n) - 4 * Math.ceil(n / 2));
    } else {
      add('weights: float32', 4 * n);
    }
    const state = plugin.stateBytes(spec.shape, spec.role);
    if (n < SMALL) {
      count++;
      params += n;
      add(`optimizer state: tensors < ${SMALL} elements`, state);
    } else if (optimizer === 'adam8bit') {
      add('optimizer state: 8-bit codes (m, v)', 2 * 4 * Math.ceil(n / 4));
      add('optimizer state: float32 absmax per block (m, v)', state - 2 * 4 * Math.ceil(n / 4));
    } else {
      add(`optimizer state: tensors ≥ ${SMALL} elements`, state);
    }
  }
  return { breakdown: b, smallTensors: { count, params } };
}

/** `pnpm bench memory`: measured persistent training state (weights + optimizer state) per parameter. */
export const benchMemory: RowsBenchmark<MemoryBenchRow, Err> = async (argv, stderr) => {
  const values = benchFlags(
    argv,
    ['preset', 'optimizer', 'master-weights', 'mode', 'backend', 'batch', 'seq', 'steps', 'json'],
    'memory',
  );
  const rows: MemoryBenchRow[] = [];
  for (const preset of String(values.preset ?? 'small,gpt2-124m').split(',')) {
    const { config, run, report } = await benchRun(
      {
        preset,
        optimizer: values.optimizer ?? 'adam8bit',
        masterWeights: values['master-weights'] ?? 'split24',
        mode: values.mode ?? 'segmented',
        backend: values.backend ?? 'wasm',
        batch: Number(values.batch ?? 1),
        seq: Number(values.seq ?? 64),
        steps: Number(values.steps ?? 2),
        tokenizer: preset === 'gpt2-124m' ? 'gpt2' : 'byte',
      },
      stderr,
    );
    const m = report.memory;
    const persistent = m.paramBytes + m.optimizerStateBytes;
    const { breakdown, smallTensors } = breakdownOf(
      run.modelConfig,
      config.optimizer,
      config.masterWeights,
      run.lr,
    );
    const total = Object.values(breakdown).reduce((a, c) => a + c, 0);
    rows.push({
      preset,
      optimizer: config.optimizer,
      masterWeights: config.masterWeights,
      mode: run.config.mode,
      gradientRelease: run.config.mode === 'segmented',
      backend: report.backend,
      batch: config.batch,
      seq: run.seq,
      steps: report.steps,
      params: report.model.params,
      paramBytes: m.paramBytes,
      optimizerStateBytes: m.optimizerStateBytes,
      persistentBytes: persistent,
      persistentBytesPerParam: persistent / report.model.params,
      gradPeakBytes: m.gradBytes,
      peakBytes: m.peakBytes,
      breakdown,
      breakdownMatchesMeasured: total === persistent,
      smallTensors,
      wallSeconds: report.wallSeconds,
    });
  }
  writeBenchResults(values.json, 'memory', { rows });
  return { rows, file: values.json };
};

export function memoryTable(rows: MemoryBenchRow[]): string {
  const head = `${'preset'.padEnd(11)}${'params'.padStart(13)}${'weights B/p'.padStart(13)}${'state B/p'.padStart(11)}${'total B/p'.padStart(11)}${'grad peak B/p'.padStart(15)}`;
  return [
    head,
    ...rows.map(
      (r) =>
        `${r.preset.padEnd(11)}${r.params.toLocaleString('en-US').padStart(13)}${(r.paramBytes / r.params).toFixed(3).padStart(13)}${(r.optimizerStateBytes / r.params).toFixed(3).padStart(11)}${r.persistentBytesPerParam.toFixed(3).padStart(11)}${(r.gradPeakBytes / r.params).toFixed(3).padStart(15)}`,
    ),
  ].join('\n');
}
