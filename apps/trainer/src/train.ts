import type { MemoryReport, StepResult } from '@kstar/core';
import { composePlugins, InputError, MemoryLedger, TrainingEngine } from '@kstar/core';
import { createTokenizer, loadCorpus, TokenDataset, type Tokenizer } from '@kstar/data';
import { createGPT, type GPTModel, resolveConfig } from '@kstar/gpt';
import { backendMemory, inPlaceGradAccumulator, selectBackend, sliceWriter } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from './config.ts';
import { optimizerEntry } from './optimizers.ts';
import type { ProgressBar } from './progress.ts';
import type { TrainReport } from './report.ts';

export interface TrainIO {
  /** Progress, validation lines and notes (stderr in the CLI). */
  log: ProgressBar;
  /** Set to true (e.g. by Ctrl-C) to stop after the current step. */
  stop?: { requested: boolean };
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
  const mode: 'full' | 'segmented' = config.mode ?? entry.requiresMode ?? 'full';
  const tokenizer = createTokenizer(config.tokenizer);
  const modelConfig = resolveConfig(config.preset, { vocabSize: tokenizer.vocabSize });
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
  const composition = composePlugins([optimizer]);
  const model: GPTModel = createGPT(run.modelConfig, { seed: config.seed });
  const segments =
    config.mode === 'segmented' ? segmentPlan(run.modelConfig.nLayer, config.blocksPerSegment) : undefined;
  const engine = new TrainingEngine(model, {
    optimizer: composition.optimizer,
    mode: config.mode,
    ...(segments ? { segments } : {}),
    ledger,
    gradAccumulator: inPlaceGradAccumulator,
    ...(config.updateChunkBytes
      ? { updatePartition: { chunkBytes: config.updateChunkBytes, writer: sliceWriter } }
      : {}),
  });
  io.log.log(
    `kstar: ${config.preset} (${model.paramCount.toLocaleString('en-US')} params) on ${run.corpusName} ` +
      `(${dataset.tokens.length.toLocaleString('en-US')} ${run.tokenizer.name} tokens), ${backend} backend, ${config.mode} mode, ` +
      `${config.optimizer} lr ${lr}, batch ${config.batch} × seq ${seq}, ${config.steps} steps`,
  );

  const valBatches = config.evalEvery > 0 ? dataset.valBatches(config.batch, seq, config.evalBatches) : [];
  const evaluate = async (): Promise<number> => {
    let sum = 0;
    for (const b of valBatches) sum += await engine.evaluate(b);
    return sum / valBatches.length;
  };

  const losses: number[] = [];
  const stepSeconds: number[] = [];
  const valLosses: Array<{ step: number; loss: number }> = [];
  const results: StepResult[] = [];
  let trainSeconds = 0;
  let lastVal: number | undefined;
  const started = performance.now();
  try {
    for (let step = 1; step <= config.steps; step++) {
      const stepLr = learningRateAt(step, config.steps, lr, Math.min(config.warmup, config.steps - 1));
      if ('learningRate' in optimizer) optimizer.learningRate = stepLr;
      const batch = dataset.trainBatch(config.batch, seq);
      const t0 = performance.now();
      let r: StepResult;
      try {
        r = entry.trainStep ? await entry.trainStep(engine, batch) : await engine.trainStep(batch);
      } finally {
        tf.dispose([batch.inputs, batch.targets]);
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

  // Prediction of the step's peak: parameters + every parameter's optimizer state + the model's activations and
  // temporaries at its peak (the GPT's derivation counts the gradients produced inside the gradient call) + in
  // segmented mode the partial gradients of tied parameters waiting for their last segment (wte).
  const paramBytes = results.at(-1)?.paramBytes ?? engine.paramBytes();
  let stateBytesPredicted = 0;
  for (const [name, v] of model.variables)
    stateBytesPredicted += optimizer.stateBytes(v.shape, model.paramInfo(name).role);
  const activationPredicted = model.predictActivationBytes({
    batch: config.batch,
    seq,
    mode: config.mode,
    backend,
    ...(segments ? { segments } : {}),
  });
  let waitingGradBytes = 0;
  // An optimizer that takes partial gradients (LOMO) applies each part at once: nothing waits.
  if (segments && !engine.partialGradients) {
    const readers = new Map<string, number>();
    for (const seg of segments) {
      for (const name of new Set(seg.flatMap((i) => model.stages[i]!.params)))
        readers.set(name, (readers.get(name) ?? 0) + 1);
    }
    for (const [name, n] of readers) if (n > 1) waitingGradBytes += 4 * model.variables.get(name)!.size;
  }
  const predicted: Record<string, number> = {
    params: 4 * model.paramCount,
    [`optimizer:${optimizer.name}`]: stateBytesPredicted,
    'activations:gpt': activationPredicted,
    ...(segments ? { 'grads:tied-waiting': waitingGradBytes } : {}),
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
    config: { ...config, lr, seq },
    plugins: composition.all.map((p) => ({ kind: p.kind, name: p.name, options: p.describe() })),
    steps: results.length,
    stoppedEarly: results.length < config.steps,
    losses,
    stepSeconds,
    valLosses,
    tokensPerSecond: results.length > 0 ? (results.length * config.batch * seq) / trainSeconds : 0,
    wallSeconds,
    memory,
  };
  tf.dispose(valBatches.flatMap((b) => [b.inputs, b.targets]));
  engine.dispose();
  model.dispose();
  ledger.detach();
  return report;
}
