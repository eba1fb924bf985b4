import type { WritePhases } from '@kstar/checkpoint';
import type { MemoryReport } from '@kstar/core';
import type { PlanRecord } from '@kstar/planner';
import type { SkippedStep } from '@kstar/train-loop';
import { writeFileAtomic } from './atomic-write.ts';
import type { ShardingReport } from './sharding-report.ts';

/** The `--report` JSON, reused by every benchmark. Every memory field is measured except `predictedPeakBytes`. */
export interface TrainReport {
  version: 1;
  backend: string;
  model: { preset: string; params: number; config: Record<string, number> };
  config: Record<string, unknown>;
  plugins: Array<{ kind: string; name: string; options: Record<string, unknown> }>;
  steps: number;
  stoppedEarly: boolean;
  /** Set when a step failed (a NaN or infinite loss, a device error): `losses` holds every step before it. */
  failed?: { step: number; reason: string; stack?: string };
  /** `--spike-guard`: the steps whose update was skipped (their losses are in `losses`). */
  spikeSkipped?: SkippedStep[];
  losses: number[];
  /** Wall seconds of each training step (the first includes shader compilation on WebGPU). */
  stepSeconds: number[];
  /** Live tensors after each step (a leak: a rising level). */
  stepTensors: number[];
  /** cuda only: device bytes in use after each step. */
  stepGpuBytes?: number[];
  /** cuda only: each step's device high-water mark (the backend's step-peak window, reset at the step's start). */
  stepGpuPeakBytes?: number[];
  valLosses: Array<{ step: number; loss: number }>;
  tokensPerSecond: number;
  wallSeconds: number;
  memory: MemoryReport;
  /**
   * WebGPU only: the buffer pool's high-water marks over the run (kernels' webgpu-pool.ts): bytes of GPU buffers
   * in use (live tensors, all of them, not only the step's ledger) and allocated (in use + free, ≤ the in-use high-water mark + the bound).
   */
  gpu?: {
    peakBytesInUse: number;
    peakBytesAllocated: number;
    poolMaxFreeBytes: number;
    /** cuda only: the largest step peak (`stepGpuPeakBytes`): the training step's memory, model build excluded. */
    stepPeakBytesInUse?: number;
  };
  /** With --memory-budget: every plan the planner made, in order, with its reason (`@kstar/planner`'s PlanRecord). */
  plans?: PlanRecord[];
  /** Resumed runs: the checkpoint, its step, and the config changes the resume allowed. `losses` start after it. */
  resumed?: { from: string; step: number; changes: string[] };
  /**
   * With --save-dir: the checkpoint directories written; `seconds`: how long training was blocked by saving (copies
   * to host memory, waits for a previous write, the wait for the last one); `waitSeconds`: the part of it spent
   * waiting for background writes; `writeSeconds`: how long the writes took in the background while training went
   * on (encode, hash, write, fsync, rename; sharded runs write in the loop); `writes`: each background write's
   * phases in seconds (`@kstar/checkpoint`'s WritePhases).
   */
  checkpoints?: {
    saved: string[];
    seconds: number;
    waitSeconds?: number;
    writeSeconds?: number;
    writes?: WritePhases[];
  };
  /** The closing sample (`--sample-tokens`): the prompt and the generated text. */
  sample?: { prompt: string; text: string };
  /** Data-parallel runs (`--sharding`): the ZeRO stage, the ranks, each rank's memory and bytes sent per step. */
  sharding?: ShardingReport;
}

/** Writes the report atomically: a reader (or a kill mid-write) sees the previous file or this one, never a part. */
export function writeReport(path: string, report: TrainReport): void {
  // Whole or not at all: a run killed while writing (e.g. a lost MPI rank ends the job) leaves no half a report.
  writeFileAtomic(path, `${JSON.stringify(report, null, 2)}\n`);
}

/** The final memory-ledger table printed after training: the one the browser page shows too. */
export { ledgerTable } from '@kstar/core';
