import { BENCH_ACTIVATIONS_HELP, benchActivations } from './bench-activations.ts';
import { BENCH_CHECKPOINT_HELP, benchCheckpoint } from './bench-checkpoint.ts';
import { benchCompressError } from './bench-compress-error.ts';
import { benchCudaKernels } from './bench-cuda.ts';
import { benchGpu, gpuTable } from './bench-gpu.ts';
import { benchKernels, benchProfile } from './bench-kernels.ts';
import { benchLazyWindow } from './bench-lazy-window.ts';
import { benchMatMul } from './bench-matmul.ts';
import { benchMemory, memoryTable } from './bench-memory.ts';
import { benchPartition, PARTITION_HELP } from './bench-partition.ts';
import { BENCH_PLAN_PREDICTION_HELP, benchPlanPrediction } from './bench-plan-prediction.ts';
import { BENCH_PLANNER_HELP, benchPlanner } from './bench-planner.ts';
import type { RowsBenchmark } from './bench-results.ts';
import type { Err } from './bench-run.ts';
import { BENCH_SHARDING_HELP, benchSharding } from './bench-sharding.ts';
import {
  BENCH_OPTIMIZERS_HELP,
  BENCH_TRAIN_HELP,
  benchOptimizers,
  benchTable,
  benchTrain,
  optimizerTable,
} from './bench-train.ts';

export interface BenchIO {
  stdout: { write(s: string): boolean };
  stderr: Err;
}

export interface Benchmark {
  /** `pnpm bench NAME --help` (its first line is NAME's line in `pnpm bench --help`). */
  help: string;
  /** Runs with the flags after NAME; what it prints on stdout is the summary and `wrote FILE`. Returns the exit code. */
  run(argv: string[], io: BenchIO): Promise<number>;
}

const lines = (io: BenchIO) => (l: string) => void io.stderr.write(`${l}\n`);
const stdoutLines = (io: BenchIO) => (l: string) => void io.stdout.write(`${l}\n`);
/** Prints the summary (if any) and the results file; exit code 0. */
function done(io: BenchIO, file: string, summary?: string): number {
  io.stdout.write(`${summary === undefined ? '' : `${summary}\n`}wrote ${file}\n`);
  return 0;
}

/** Where a benchmark's progress goes: `stderr` itself, or `lines` (one call a line). */
type ProgressOf<L> = (io: BenchIO) => L;
const stderr: ProgressOf<Err> = (io) => io.stderr;

/** `run` of a benchmark that returns its rows: prints `table(rows)` and the results file. */
function printsRows<R, L>(
  bench: RowsBenchmark<R, L>,
  table: (rows: R[]) => string,
  log: ProgressOf<L>,
): Benchmark['run'] {
  return async (argv, io) => {
    const { rows, file } = await bench(argv, log(io));
    return done(io, file, table(rows));
  };
}

/** `run` of a benchmark that returns its summary table: prints it and the results file. */
function printsTable<L>(
  bench: (argv: string[], log: L) => Promise<{ file: string; table: string }>,
  log: ProgressOf<L>,
): Benchmark['run'] {
  return async (argv, io) => {
    const { file, table } = await bench(argv, log(io));
    return done(io, file, table);
  };
}

/** Every benchmark by name, in the order `pnpm bench --help` lists them. To add one: one entry here. */
export const BENCHMARKS: Record<string, Benchmark> = {
  train: {
    help: BENCH_TRAIN_HELP,
    run: printsRows(benchTrain, benchTable, stderr),
  },
  optimizers: {
    help: BENCH_OPTIMIZERS_HELP,
    run: printsRows(benchOptimizers, optimizerTable, stderr),
  },
  activations: {
    help: BENCH_ACTIVATIONS_HELP,
    run: printsTable(benchActivations, stderr),
  },
  planner: {
    help: BENCH_PLANNER_HELP,
    run: async (argv, io) => {
      const { file, result } = await benchPlanner(argv, io.stderr);
      const ratio = result.plannerOverBestFixedTokensPerSecond.toFixed(3);
      return done(io, file, `planner / best fixed plan tokens/s: ${ratio}`);
    },
  },
  'plan-prediction': {
    help: BENCH_PLAN_PREDICTION_HELP,
    run: printsTable(benchPlanPrediction, stderr),
  },
  'compress-error': {
    help: 'pnpm bench compress-error --json FILE [--preset tiny] [--batch 4] [--seq 64]  (gradient error of act-compress)\n',
    run: printsTable(benchCompressError, stderr),
  },
  memory: {
    help: `pnpm bench memory --json FILE [--preset small,gpt2-124m] [--optimizer adamw] [--master-weights fp32|split24] [--mode full]

Builds each preset (gpt2-124m with the gpt2 tokenizer, its real vocabulary), runs --steps (default 2) steps at a tiny
batch/seq (default 1 × 64) and writes the measured persistent training state per parameter: paramBytes +
optimizerStateBytes (gradients released in segmented mode), with where the bytes go.
`,
    run: printsRows(benchMemory, memoryTable, stderr),
  },
  checkpoint: {
    help: BENCH_CHECKPOINT_HELP,
    run: async (argv, io) => {
      const { file, summary } = await benchCheckpoint(argv, lines(io));
      return done(io, file, summary);
    },
  },
  partition: {
    help: PARTITION_HELP,
    run: async (argv, io) => done(io, (await benchPartition(argv, lines(io))).file),
  },
  'lazy-window': {
    help: 'pnpm bench lazy-window --json FILE [--steps 100] [--windows 1,2,3] [--batch 8]\n',
    run: async (argv, io) => done(io, (await benchLazyWindow(argv, lines(io))).file),
  },
  sharding: {
    help: BENCH_SHARDING_HELP,
    run: printsTable(benchSharding, lines),
  },
  gpu: {
    help:
      'pnpm bench gpu --json FILE [--preset gpt2-124m] [--seq 1024] [--batch 8] [--steps 20] [--configs LIST] [--repeats N]\n' +
      '  --repeats N runs every configuration N times in alternating rounds (own process each); the JSON summary has\n' +
      "  the median over runs of each run's median step (steps after the first two)\n",
    run: printsRows(benchGpu, gpuTable, lines),
  },
  'cuda-kernels': {
    help: 'pnpm bench cuda-kernels --json FILE [--only A,B] [--speed]   every kernel of the cuda backend vs the cpu backend (PASS/FAIL); --only: the cases whose name contains A or B (--speed: with the GEMM speed table)\n',
    run: async (argv, io) => {
      const { file, failed } = await benchCudaKernels(argv, stdoutLines(io));
      done(io, file);
      return failed === 0 ? 0 : 1;
    },
  },
  kernels: {
    help: 'pnpm bench kernels --json FILE [--backend webgpu] [--shapes gpt2|tiny] [--only attention]   fused kernels (and the fused attention) vs their fallbacks (PASS/FAIL)\n',
    run: async (argv, io) => done(io, (await benchKernels(argv, stdoutLines(io))).file),
  },
  matmul: {
    help: 'pnpm bench matmul --json FILE [--shapes gpt2|odd] [--reps 7] [--passes 1] [--choices tfjs,tfjs-packed,kstar,kstar-large,kstar-f16,kstar-f16-double,…] [--parity gpt2,odd|none]   WebGPU matmul TFLOP/s and parity\n',
    run: async (argv, io) => done(io, (await benchMatMul(argv, stdoutLines(io))).file),
  },
  profile: {
    help: 'pnpm bench profile --json FILE [--preset gpt2-124m] [--seq 1024] [--batch 8] [--mode full] | --config NAME [--steps 3]   per-kernel GPU times of a step (AdamW, or a bench gpu row)\n',
    run: async (argv, io) => done(io, (await benchProfile(argv, stdoutLines(io))).file),
  },
};
