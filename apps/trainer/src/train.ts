import type { Collective, MemoryReport, StepResult } from '@kstar/core';
import { composePlugins, InputError, MemoryLedger, TrainingEngine } from '@kstar/core';
import { createTokenizer, loadCorpus, TokenDataset, type Tokenizer } from '@kstar/data';
import { createGPT, type GPTModel, resolveConfig } from '@kstar/gpt';
import {
  backendMemory,
  guardWebGPUStep,
  inPlaceGradAccumulator,
  selectBackend,
  sliceWriter,
} from '@kstar/kernels';
import { split24 } from '@kstar/master-split24';
import { zero } from '@kstar/shard-zero';
import * as tf from '@tensorflow/tfjs';
import {
  type ActivationSpec,
  describeSpec,
  type PlannedActivations,
  parseActivations,
  parseBytes,
  planActivations,
} from './activations.ts';
import type { TrainConfig } from './config.ts';
import { optimizerEntry } from './optimizers.ts';
import type { ProgressBar } from './progress.ts';
import type { TrainReport } from './report.ts';
import { rankBatch, stageOf } from './sharding.ts';
import { shardingReport } from './sharding-report.ts';

export interface TrainIO {
  /** Progress, validation lines and notes (stderr in the CLI). */
  log: ProgressBar;
  /** Set to true (e.g. by Ctrl-C) to stop after the current step. */
  stop?: { requested: boolean };
  /** The ranks of a data-parallel run (`--sharding`); absent: one process. */
  collective?: Collective;
}

/** Learning rate at `step` (1-based): linear warm-up, then cosine decay to 10% of the peak. */
export function learningRateAt(step: number, total: number, peak: number, warmup: number): number {
  if (warmup > 0 && step <= warmup) return (peak * step) / warmup;
  const span = Math.max(1, total - warmup);
  const progress = Math.min(1, (step - warmup) / span);
  return peak * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Segments of `blocksPerSegment` blocks; the embedding and the head are segments of their own. */
export function segmentPlan(nLayer: number, blocksPerSegment: number): number[][] {
  const segments: number[][] = [[0]];
  for (let b = 0; b < nLayer; b += blocksPerSegment) {
    const seg: number[] = [];
    for (let k = b; k < Math.min(nLayer, b + blocksPerSegment); k++) seg.push(1 + k);
    segments.push(seg);
  }
  segments.push([nLayer + 1]);
  return segments;
}

/** Everything a run needs, checked before anything is printed or written. */
export interface PreparedRun {
  config: TrainConfig & { mode: 'full' | 'segmented' };
  lr: number;
  seq: number;
  tokenizer: Tokenizer;
  dataset: TokenDataset;
  corpusName: string;
  modelConfig: ReturnType<typeof resolveConfig>;
  activations: ActivationSpec;
  memoryBudget?: number;
}

/**
 * Validate a run against its inputs (corpus, tokenizer, context, optimizer) without touching a backend. Every problem is
 * an InputError naming it.
 */
export function prepareRun(config: TrainConfig): PreparedRun {
  const entry = optimizerEntry(config.optimizer);
  if (entry.requiresMode && config.mode && config.mode !== entry.requiresMode) {
    throw new InputError(
      `optimizer '${config.optimizer}' updates inside the backward pass, so it needs --mode ${entry.requiresMode} (got --mode ${config.mode})`,
      'E_CONFIG',
    );
  }
  const activations = parseActivations(config.activations ?? '');
  const recomputes =
    activations.compress !== undefined ||
    (activations.checkpoint !== undefined &&
      !(activations.checkpoint.selective && activations.checkpoint.plan === undefined));
  if (recomputes && config.mode === 'full') {
    throw new InputError(
      `--activations ${describeSpec(activations)} recomputes segments, which --mode full does not do: drop --mode full (checkpoint plans and compress select segmented mode) or use checkpoint:selective alone`,
      'E_CONFIG',
    );
  }
  const mode: 'full' | 'segmented' = config.mode ?? entry.requiresMode ?? (recomputes ? 'segmented' : 'full');
  const memoryBudget = config.memoryBudget === undefined ? undefined : parseBytes(config.memoryBudget);
  const tokenizer = createTokenizer(config.tokenizer);
  const modelConfig = resolveConfig(config.preset, {
    vocabSize: tokenizer.vocabSize,
    ...(config.context !== undefined ? { blockSize: config.context } : {}),
  });
  const defaultSeq = config.preset === 'tiny' ? Math.min(128, modelConfig.blockSize) : modelConfig.blockSize;
  const seq = config.seq ?? defaultSeq;
  if (seq > modelConfig.blockSize) {
    throw new InputError(
      `sequence length ${seq} is longer than the model's context ${modelConfig.blockSize} (preset ${config.preset}): pass --seq ${modelConfig.blockSize} or less`,
      'E_CONFIG',
    );
  }
  const corpus = loadCorpus(
    config.corpus === 'brown' ? { kind: 'brown' } : { kind: 'path', path: config.corpus },
  );
  const tokens = tokenizer.encode(corpus.text);
  const dataset = new TokenDataset(tokens, {
    seed: config.seed,
    vocabSize: tokenizer.vocabSize,
    name: corpus.name,
  });
  dataset.checkShape(config.batch, seq);
  return {
    config: { ...config, mode },
    lr: config.lr ?? entry.defaultLr,
    seq,
    tokenizer,
    dataset,
    corpusName: corpus.name,
    modelConfig,
    activations,
    ...(memoryBudget !== undefined ? { memoryBudget } : {}),
  };
}

/** Parameters, optimizer state and tied partial gradients of a plan: the non-activation terms of a step's peak. */
export function fixedBytes(
  model: GPTModel,
  optimizer: { stateBytes: (s: readonly number[], r?: never) => number },
  masterWeights?: { bytesFor(shape: readonly number[]): number },
) {
  let state = 0;
  for (const [name, v] of model.variables)
    state += (optimizer.stateBytes as (s: readonly number[], r?: string) => number)(
      v.shape,
      model.paramInfo(name).role,
    );
  return {
    // Read before the engine adopts the variables (a master-weights plugin frees them).
    params: masterWeights
      ? [...model.variables.values()].reduce((sum, v) => sum + masterWeights.bytesFor(v.shape), 0)
      : 4 * model.paramCount,
    optimizerState: state,
    waitingGrads(segments: number[][] | undefined): number {
      if (!segments) return 0;
      const readers = new Map<string, number>();
      for (const seg of segments) {
        for (const name of new Set(seg.flatMap((i) => model.stages[i]!.params)))
          readers.set(name, (readers.get(name) ?? 0) + 1);
      }
      let bytes = 0;
      for (const [name, n] of readers) if (n > 1) bytes += 4 * model.variables.get(name)!.size;
      return bytes;
    },
  };
}

function maxOf(results: StepResult[], key: keyof StepResult): number {
  return results.reduce((m, r) => Math.max(m, r[key]), 0);
}

/** Train per the config. Resolves with the report (also when stopped early). */
export async function train(run: PreparedRun, io: TrainIO): Promise<TrainReport> {
  const { config, lr, seq, dataset } = run;
  const ledger = new MemoryLedger();
  const { backend } = await selectBackend(config.backend, { log: (line) => io.log.log(line) });
  const entry = optimizerEntry(config.optimizer);
  const optimizer = entry.create(lr, config.optimizerOptions);
  const masterWeights = config.masterWeights === 'split24' ? split24() : undefined;
  const stage = stageOf(config.sharding);
  const sharding = stage !== null && io.collective ? zero({ stage, collective: io.collective }) : undefined;
  const ranks = sharding?.collective.size ?? 1;
  const rank = sharding?.collective.rank ?? 0;
  const composition = composePlugins([
    optimizer,
    ...(masterWeights ? [masterWeights] : []),
    ...(sharding ? [sharding.collective, sharding] : []),
  ]);
  const model: GPTModel = createGPT(run.modelConfig, { seed: config.seed });
  const fixed = fixedBytes(model, optimizer as never, masterWeights);
  let planned: PlannedActivations;
  try {
    // Before the first step: a budget that cannot be met is an InputError naming the predicted bytes.
    planned = planActivations({
      spec: run.activations,
      config: run.modelConfig,
      batch: config.batch,
      seq,
      backend: backend as 'cpu',
      userMode: config.mode,
      defaultSegments:
        config.mode === 'segmented'
          ? segmentPlan(run.modelConfig.nLayer, config.blocksPerSegment)
          : undefined,
      fixed,
      ...(run.memoryBudget !== undefined ? { budget: run.memoryBudget } : {}),
    });
  } catch (e) {
    model.dispose();
    ledger.detach();
    throw e;
  }
  const choice = planned.choice;
  const segments = choice.segments;
  const engine = new TrainingEngine(model, {
    optimizer: composition.optimizer,
    mode: choice.mode,
    ...(segments && choice.segmentsBy === 'engine' ? { segments } : {}),
    activations: planned.strategies,
    ledger,
    gradAccumulator: inPlaceGradAccumulator,
    ...(masterWeights ? { masterWeights } : {}),
    ...(sharding ? { sharding } : {}),
    ...(config.updateChunkBytes
      ? { updatePartition: { chunkBytes: config.updateChunkBytes, writer: sliceWriter } }
      : {}),
  });
  io.log.log(
    `kstar: ${config.preset} (${model.paramCount.toLocaleString('en-US')} params) on ${run.corpusName} ` +
      `(${dataset.tokens.length.toLocaleString('en-US')} ${run.tokenizer.name} tokens), ${backend} backend, ${config.mode} mode, ` +
      `${config.optimizer} lr ${lr}${masterWeights ? `, ${masterWeights.name} weights` : ''}, batch ${config.batch} × seq ${seq}, ${config.steps} steps` +
      (planned.strategies.length
        ? `; activations ${planned.strategies.map((s) => `${s.name} ${JSON.stringify(s.describe())}`).join(', ')}`
        : '') +
      (run.memoryBudget !== undefined
        ? `; predicted peak ${planned.predictedPeakBytes.toLocaleString('en-US')} of budget ${run.memoryBudget.toLocaleString('en-US')} bytes`
        : '') +
      (sharding
        ? `; ZeRO stage ${sharding.stage} over ${ranks} ranks (${config.batch / ranks} rows each)`
        : ''),
  );

  const valBatches = config.evalEvery > 0 ? dataset.valBatches(config.batch, seq, config.evalBatches) : [];
  const evaluate = async (): Promise<number> => {
    let sum = 0;
    for (const b of valBatches) {
      // Data parallel: this rank's rows; the engine averages the loss over ranks.
      const mine = ranks > 1 ? rankBatch(b, rank, ranks) : b;
      sum += await engine.evaluate(mine);
      if (mine !== b) tf.dispose([mine.inputs, mine.targets]);
    }
    return sum / valBatches.length;
  };

  const losses: number[] = [];
  const stepSeconds: number[] = [];
  const valLosses: Array<{ step: number; loss: number }> = [];
  const results: StepResult[] = [];
  let trainSeconds = 0;
  let lastVal: number | undefined;
  const started = performance.now();
  const sentBefore = sharding?.collective.bytesSent() ?? 0;
  try {
    for (let step = 1; step <= config.steps; step++) {
      const stepLr = learningRateAt(step, config.steps, lr, Math.min(config.warmup, config.steps - 1));
      if ('learningRate' in optimizer) optimizer.learningRate = stepLr;
      const global = dataset.trainBatch(config.batch, seq);
      // Every rank draws the same global batch (same seed) and trains on its own rows of it.
      const batch = ranks > 1 ? rankBatch(global, rank, ranks) : global;
      const t0 = performance.now();
      let r: StepResult;
      try {
        // On WebGPU: inside error scopes; a validation/out-of-memory error or a lost device throws TrainingError(step).
        r = await guardWebGPUStep(step, () =>
          entry.trainStep ? entry.trainStep(engine, batch) : engine.trainStep(batch),
        );
      } finally {
        tf.dispose([global.inputs, global.targets, batch.inputs, batch.targets]);
      }
      const seconds = (performance.now() - t0) / 1000;
      stepSeconds.push(seconds);
      trainSeconds += seconds;
      results.push(r);
      losses.push(r.loss);
      const tokensPerSecond = (step * config.batch * seq) / trainSeconds;
      if (valBatches.length > 0 && (step % config.evalEvery === 0 || step === config.steps)) {
        lastVal = await evaluate();
        valLosses.push({ step, loss: lastVal });
        io.log.update(
          {
            step,
            total: config.steps,
            loss: r.loss,
            tokensPerSecond,
            elapsedSeconds: trainSeconds,
            valLoss: lastVal,
          },
          true,
        );
      } else {
        io.log.update({
          step,
          total: config.steps,
          loss: r.loss,
          tokensPerSecond,
          elapsedSeconds: trainSeconds,
          ...(lastVal !== undefined ? { valLoss: lastVal } : {}),
        });
      }
      // Let signal handlers (Ctrl-C) run between steps.
      await new Promise((resolve) => setImmediate(resolve));
      if (io.stop?.requested && step < config.steps) {
        io.log.done();
        io.log.log(`kstar: stopped after step ${step} (Ctrl-C); writing the report`);
        if (valBatches.length > 0 && valLosses.at(-1)?.step !== step)
          valLosses.push({ step, loss: await evaluate() });
        break;
      }
    }
  } finally {
    io.log.done();
  }
  const wallSeconds = (performance.now() - started) / 1000;
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
    [`optimizer:${optimizer.name}`]: fixed.optimizerState,
    [planned.strategies.length
      ? `activations:gpt+${planned.strategies.map((s) => s.name).join('+')}`
      : 'activations:gpt']: planned.predictedActivationBytes,
    ...(segments && !engine.partialGradients ? { 'grads:tied-waiting': fixed.waitingGrads(segments) } : {}),
  };
  const gpu = backendMemory();
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
    config: { ...config, mode: choice.mode, lr, seq },
    plugins: [...composition.all, ...planned.strategies].map((p) => ({
      kind: p.kind,
      name: p.name,
      options: p.describe(),
    })),
    steps: results.length,
    stoppedEarly: results.length < config.steps,
    losses,
    stepSeconds,
    valLosses,
    tokensPerSecond: results.length > 0 ? (results.length * config.batch * seq) / trainSeconds : 0,
    wallSeconds,
    memory,
    ...(shardingSection ? { sharding: shardingSection } : {}),
    ...(gpu.peakGpuBytesInUse !== undefined
      ? {
          gpu: {
            peakBytesInUse: gpu.peakGpuBytesInUse,
            peakBytesAllocated: gpu.peakGpuBytesAllocated!,
            poolMaxFreeBytes: gpu.gpuPoolMaxFreeBytes!,
          },
        }
      : {}),
  };
  tf.dispose(valBatches.flatMap((b) => [b.inputs, b.targets]));
  engine.dispose();
  masterWeights?.dispose();
  model.dispose(); // variables adopted by a master-weights plugin are already disposed
  ledger.detach();
  return report;
}
