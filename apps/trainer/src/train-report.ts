import type { WritePhases } from '@kstar/checkpoint';
import type { MemoryReport, StepResult } from '@kstar/core';
import { type GPTModel, generate } from '@kstar/gpt';
import { backendMemory } from '@kstar/kernels';
import type { Split24Plugin } from '@kstar/master-split24';
import * as tf from '@tensorflow/tfjs';
import type { PlannedActivations } from './activations.ts';
import { cudaMemory } from './backend-select.ts';
import type { PreparedRun } from './prepare.ts';
import type { TrainReport } from './report.ts';
import { seededRandom } from './sample.ts';
import type { RunSetup } from './setup.ts';
import { shardingReport } from './sharding-report.ts';

/** What the training loop measured, for the report. */
export interface LoopRecord {
  /** The first step this run trained (after a resumed checkpoint's step). */
  startStep: number;
  results: StepResult[];
  losses: number[];
  stepSeconds: number[];
  /** Live tensors after each step (a leak shows as a rising level). */
  stepTensors: number[];
  /** cuda's device bytes in use after each step. */
  stepGpuBytes: number[];
  /** cuda: each step's own device high-water mark. */
  stepGpuPeakBytes: number[];
  valLosses: Array<{ step: number; loss: number }>;
  trainSeconds: number;
  wallSeconds: number;
  tokens: number;
  failed: TrainReport['failed'];
  checkpoints: string[];
  saveSeconds: number;
  /** Of `saveSeconds`, waits for a previous background write; and the background writes' own seconds. */
  checkpointWaitSeconds: number;
  checkpointWriteSeconds: number;
  checkpointWrites: WritePhases[];
  /** The collective's bytes sent before the first step (ZeRO). */
  sentBefore: number;
}

function maxOf(results: StepResult[], key: 'gradPeakBytes' | 'activationPeakBytes' | 'peakBytes'): number {
  return results.reduce((m, r) => Math.max(m, r[key]), 0);
}

/**
 * The run's report: measured memory beside the prediction of the last plan (`planned`), the losses and timings of
 * `record`, the sharding section under ZeRO and, with `--sample-tokens`, a closing sample from the trained weights.
 */
export async function trainReport(
  run: PreparedRun,
  setup: RunSetup,
  planned: PlannedActivations,
  record: LoopRecord,
): Promise<TrainReport> {
  const { config, lr, seq } = run;
  const { backend, sharding, engine, model, masterWeights, fixed, optimizer, planner, accum, composition } =
    setup;
  const { guard, resume } = setup;
  const { results, startStep, failed, checkpoints, saveSeconds, sentBefore } = record;
  const { checkpointWaitSeconds, checkpointWriteSeconds, checkpointWrites } = record;
  const { stepGpuPeakBytes } = record;
  const { losses, stepSeconds, stepTensors, stepGpuBytes, valLosses, tokens, trainSeconds, wallSeconds } =
    record;
  const shardingSection = sharding
    ? await shardingReport(sharding, engine, model, {
        gradPeakBytes: maxOf(results, 'gradPeakBytes'),
        peakBytes: maxOf(results, 'peakBytes'),
        bytesSentPerStep: (sharding.collective.bytesSent() - sentBefore) / Math.max(1, results.length),
      })
    : undefined;

  // Prediction of the step's peak: parameters + every parameter's optimizer state + the model's activations and
  // temporaries at its peak (the GPT's derivation counts the gradients produced inside the gradient call) + in
  // segmented mode the partial gradients of tied parameters waiting for their last segment (wte).
  const paramBytes = results.at(-1)?.paramBytes ?? engine.paramBytes();
  const predicted: Record<string, number> = {
    params: fixed.params,
    [`optimizer:${optimizer.name}`]: planner?.predictedStateBytes() ?? fixed.optimizerState,
    [planned.strategies.length
      ? `activations:gpt+${planned.strategies.map((s) => s.name).join('+')}`
      : 'activations:gpt']: planned.predictedActivationBytes,
    ...(planned.choice.segments && !engine.partialGradients
      ? { 'grads:tied-waiting': planned.tiedWaitingBytes ?? fixed.waitingGrads(planned.choice.segments) }
      : {}),
    // --grad-accum: the float32 sum of the earlier micro-batches' gradients, alive through the later ones.
    ...(accum ? { 'grads:accumulated': fixed.accumulatedGrads } : {}),
  };
  const gpu = { ...backendMemory(), ...cudaMemory() };
  const memory: MemoryReport = {
    paramBytes,
    gradBytes: maxOf(results, 'gradPeakBytes'),
    optimizerStateBytes: engine.optimizerStateBytes(),
    activationPeakBytes: maxOf(results, 'activationPeakBytes'),
    peakBytes: maxOf(results, 'peakBytes'),
    predictedPeakBytes: Object.values(predicted).reduce((a, b) => a + b, 0),
    predicted,
    ...(gpu.gpuBytesInUse !== undefined ? { gpuBytesInUse: gpu.gpuBytesInUse } : {}),
    ...(gpu.gpuBytesAllocated !== undefined ? { gpuBytesAllocated: gpu.gpuBytesAllocated } : {}),
    rssBytes: process.memoryUsage().rss,
  };
  const report: TrainReport = {
    version: 1,
    backend,
    model: { preset: config.preset, params: model.paramCount, config: { ...run.modelConfig } },
    config: { ...config, mode: planned.choice.mode, lr, seq },
    plugins: [...composition.all, ...planned.strategies].map((p) => ({
      kind: p.kind,
      name: p.name,
      options: p.describe(),
    })),
    steps: results.length,
    stoppedEarly: !config.evalOnly && startStep + results.length - 1 < config.steps,
    ...(failed ? { failed } : {}),
    ...(guard ? { spikeSkipped: guard.skipped } : {}),
    ...(resume
      ? { resumed: { from: resume.dir, step: resume.trainer.step, changes: run.resume!.changes } }
      : {}),
    ...(config.saveDir
      ? {
          checkpoints: {
            saved: checkpoints,
            seconds: saveSeconds,
            waitSeconds: checkpointWaitSeconds,
            writeSeconds: checkpointWriteSeconds,
            ...(checkpointWrites.length > 0 ? { writes: checkpointWrites } : {}),
          },
        }
      : {}),
    losses,
    stepSeconds,
    stepTensors,
    ...(stepGpuBytes.length > 0 ? { stepGpuBytes } : {}),
    ...(stepGpuPeakBytes.length > 0 ? { stepGpuPeakBytes } : {}),
    valLosses,
    tokensPerSecond: results.length > 0 ? tokens / trainSeconds : 0,
    wallSeconds,
    memory,
    ...(planner ? { plans: planner.log.plans } : {}),
    ...(shardingSection ? { sharding: shardingSection } : {}),
    ...(gpu.peakGpuBytesInUse !== undefined
      ? {
          gpu: {
            peakBytesInUse: gpu.peakGpuBytesInUse,
            peakBytesAllocated: gpu.peakGpuBytesAllocated!,
            poolMaxFreeBytes: gpu.gpuPoolMaxFreeBytes!,
            ...(stepGpuPeakBytes.length > 0 ? { stepPeakBytesInUse: Math.max(...stepGpuPeakBytes) } : {}),
          },
        }
      : {}),
  };
  if (config.sampleTokens > 0) {
    // ZeRO-3: no rank holds the model; every rank gathers it whole for the sample (a collective: all take part).
    const sharded = sharding?.stage === 3 ? engine.sharded : undefined;
    const names = [...model.variables.keys()];
    if (sharded) await sharded.gather(names);
    const gathered = sharded ? sharded.read(names) : undefined;
    try {
      report.sample = await closingSample(run, model, masterWeights, gathered);
    } finally {
      if (gathered) sharded!.release(gathered);
    }
  }
  return report;
}

/** A short text from the trained weights (the run's seed, temperature 0.8, top-k 40) after a fixed prompt. */
async function closingSample(
  run: PreparedRun,
  model: GPTModel,
  split?: Split24Plugin,
  gathered?: Record<string, tf.Tensor>,
): Promise<{ prompt: string; text: string }> {
  const prompt = 'The ';
  const params = gathered ? undefined : split ? split.materialize(split.names()) : undefined;
  try {
    const ids = await generate(
      model,
      Array.from(run.tokenizer.encode(prompt)),
      { tokens: run.config.sampleTokens, temperature: 0.8, topK: 40, random: seededRandom(run.config.seed) },
      () => {},
      gathered ?? params,
    );
    return { prompt, text: run.tokenizer.decode(ids) };
  } finally {
    if (params) tf.dispose(Object.values(params));
  }
}
