import { closeSync, existsSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BackgroundCheckpointWriter, type CheckpointHooks, restoreOptimizerState } from '@kstar/checkpoint';
import type { Batch, Collective, MemoryReport, OptimizerPlugin, StepResult } from '@kstar/core';
import {
  composePlugins,
  fixedStepBytes as fixedBytes,
  InputError,
  KstarError,
  MemoryLedger,
  TrainingEngine,
  TrainingError,
} from '@kstar/core';
import { createTokenizer, loadCorpus, TokenDataset, type Tokenizer } from '@kstar/data';
import {
  countParamsFormula,
  createGPT,
  decodeHfGpt2,
  GPT_PRESETS,
  type GPTConfig,
  type GPTModel,
  resolveConfig,
} from '@kstar/gpt';
import {
  backendMemory,
  guardWebGPUStep,
  inPlaceGradAccumulator,
  sliceWriter,
  webgpuDevice,
} from '@kstar/kernels';
import { type Split24Plugin, split24 } from '@kstar/master-split24';
import { hostAdamW, offloadEffective, offloadState } from '@kstar/offload';
import type { AdamWPlugin } from '@kstar/optim-adamw';
import { zero } from '@kstar/shard-zero';
import * as tf from '@tensorflow/tfjs';
import {
  type ActivationSpec,
  type PlannedActivations,
  parseActivations,
  parseBytes,
  planActivations,
  recomputeInFullMode,
  recomputesSegments,
} from './activations.ts';
import { activationBackendOf, cudaMemory, selectTrainerBackend } from './backend-select.ts';
import { MODEL_FILE, optimizerFile, type TrainerState } from './checkpoint/format.ts';
import type { LoadedCheckpoint } from './checkpoint/read.ts';
import { startCheckpoint } from './checkpoint/save.ts';
import { restoreShardedCheckpoint, saveShardedCheckpoint } from './checkpoint/sharded.ts';
import { restoreWeights } from './checkpoint/state.ts';
import type { TrainConfig } from './config.ts';
import { accumulatedGradBytes, GradAccumulation } from './grad-accum.ts';
import { clippedStep, scaledOptimizer } from './grad-clip.ts';
import { checkStepFits, checkTensorsFit, type PlannedTensor, webgpuBufferLimit } from './memory-check.ts';
import { optimizerEntry } from './optimizers.ts';
import { type AdaptivePlanner, injectedOutOfMemory, plannedActivations, plannerFor } from './plan.ts';
import { loadCalibration, saveCalibration } from './plan-calibrate.ts';
import {
  checkOffloadState,
  checkStateChoices,
  offloadedStateDeviceBytes,
  placedOptimizer,
  requireBudgetForStateChoices,
  type StateChoice,
} from './plan-state.ts';
import { applyPrecision, preparePrecision } from './precision.ts';
import type { ProgressBar } from './progress.ts';
import type { TrainReport } from './report.ts';
import { generate } from './sample.ts';
import { parseSeqSchedule, seqAt } from './seq-schedule.ts';
import { shardedGlobalNorm, shardedLomoStep } from './sharded-lomo.ts';
import { rankBatch, stageOf } from './sharding.ts';
import { shardingReport } from './sharding-report.ts';
import { SpikeGuard } from './spike-guard.ts';

export interface TrainIO {
  /** Progress, validation lines and notes (stderr in the CLI). */
  log: ProgressBar;
  /**
   * Polled after each step (a `StopRequest`: Ctrl-C, SIGTERM, SIGHUP, a parent that exited): when `requested`, the
   * run stops after that step and the report says `stoppedEarly`; `describe()` names the cause in the log.
   */
  stop?: { readonly requested: boolean; describe?(): string };
  /** The ranks of a data-parallel run (`--sharding`); absent: one process. */
  collective?: Collective;
  /** Tests: watch checkpoints being written in the background. */
  checkpointHooks?: CheckpointHooks;
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
  /** Built here, before any backend, so that a bad `--optimizer-option` is refused before any work. */
  optimizer: OptimizerPlugin;
  memoryBudget?: number | 'auto';
  /** `--seq-schedule`: `seq` is its longest T. */
  seqSchedule?: Array<{ seq: number; steps: number }>;
  /** `--state-choices`: optimizer-state placements the planner may pick per parameter group (float32 first). */
  stateChoices?: StateChoice[];
  /** With a budget: one fixed plan (option labels, `PlanRecord.choices`) instead of solving (reference runs). */
  pinPlan?: readonly string[];
  /** `--init-from`: float32 weights by K* name, checked against the model's shapes. */
  initWeights?: Map<string, Float32Array>;
  /** The verified checkpoint to continue from, and the config changes it allowed. */
  resume?: { checkpoint: LoadedCheckpoint; changes: string[] };
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
  const recomputes = recomputesSegments(activations);
  if (recomputes && config.mode === 'full') throw recomputeInFullMode(activations);
  const mode: 'full' | 'segmented' = config.mode ?? entry.requiresMode ?? (recomputes ? 'segmented' : 'full');
  const memoryBudget =
    config.memoryBudget === undefined || config.memoryBudget === 'auto'
      ? config.memoryBudget
      : parseBytes(config.memoryBudget);
  const seqSchedule = config.seqSchedule === undefined ? undefined : parseSeqSchedule(config.seqSchedule);
  const stateChoices = checkStateChoices(config);
  checkOffloadState(config);
  const tokenizer = createTokenizer(config.tokenizer);
  if (config.vocab !== undefined && config.vocab < tokenizer.vocabSize) {
    throw new InputError(
      `--vocab ${config.vocab} is smaller than the ${tokenizer.name} tokenizer's ${tokenizer.vocabSize} tokens: pass --vocab ${tokenizer.vocabSize} or more`,
      'E_CONFIG',
    );
  }
  if (config.dModel !== undefined || config.heads !== undefined) {
    const D = config.dModel ?? GPT_PRESETS[config.preset].nEmbd;
    const H = config.heads ?? GPT_PRESETS[config.preset].nHead;
    if (D % H !== 0) {
      throw new InputError(
        `--d-model ${D} is not divisible by --heads ${H}: choose heads dividing the width (e.g. --heads ${[8, 6, 4, 2, 1].find((h) => D % h === 0)}) or a width that is a multiple of ${H}`,
        'E_CONFIG',
      );
    }
  }
  const modelConfig = resolveConfig(config.preset, {
    vocabSize: config.vocab ?? tokenizer.vocabSize,
    ...(config.layers !== undefined ? { nLayer: config.layers } : {}),
    ...(config.dModel !== undefined ? { nEmbd: config.dModel } : {}),
    ...(config.heads !== undefined ? { nHead: config.heads } : {}),
    ...(config.context !== undefined ? { blockSize: config.context } : {}),
  });
  const defaultSeq = config.preset === 'tiny' ? Math.min(128, modelConfig.blockSize) : modelConfig.blockSize;
  const seq = seqSchedule ? Math.max(...seqSchedule.map((s) => s.seq)) : (config.seq ?? defaultSeq);
  if (seq > modelConfig.blockSize) {
    throw new InputError(
      `sequence length ${seq} is longer than the model's context ${modelConfig.blockSize} (preset ${config.preset}): pass --seq ${modelConfig.blockSize} or less`,
      'E_CONFIG',
    );
  }
  checkGradAccum(config, entry);
  // --grad-clip: LOMO and AdaLomo clip by global norm with their own two-pass step (the others are wrapped in train).
  const optimizer = entry.create(
    config.lr ?? entry.defaultLr,
    config.gradClip !== undefined && entry.trainStep
      ? { ...config.optimizerOptions, clipGradNorm: config.gradClip }
      : config.optimizerOptions,
  );
  const corpus = readCorpus(config.corpus);
  const tokens = tokenizer.encode(corpus.text);
  const dataset = new TokenDataset(tokens, {
    seed: config.seed,
    vocabSize: tokenizer.vocabSize,
    name: corpus.name,
  });
  dataset.checkShape(config.batch, seq);
  if (config.initFrom && config.resume) {
    throw new InputError(
      '--init-from and --resume both set the weights: resume a run, or start a new one from weights',
      'E_CONFIG',
    );
  }
  const initWeights = config.initFrom ? readInitWeights(config.initFrom, modelConfig) : undefined;
  return {
    ...(initWeights ? { initWeights } : {}),
    config: { ...config, mode },
    lr: config.lr ?? entry.defaultLr,
    seq,
    tokenizer,
    dataset,
    corpusName: corpus.name,
    modelConfig,
    activations,
    ...(memoryBudget !== undefined ? { memoryBudget } : {}),
    optimizer,
    ...(seqSchedule ? { seqSchedule } : {}),
    ...(stateChoices ? { stateChoices } : {}),
  };
}

/** `--grad-accum K`: refused where the micro-batches' gradients cannot be summed before the update. */
function checkGradAccum(config: TrainConfig, entry: ReturnType<typeof optimizerEntry>): void {
  const K = config.gradAccum;
  if (K === 1) return;
  if (entry.requiresMode === 'segmented') {
    throw new InputError(
      `--grad-accum ${K} cannot be used with --optimizer ${config.optimizer}: it updates each weight inside the backward pass (gradient release), so no gradient is kept to sum; use --batch ${config.batch * K} (or a memory strategy such as --activations checkpoint) instead`,
      'E_CONFIG',
    );
  }
  if (config.sharding !== 'none' && config.gradClip !== undefined) {
    throw new InputError(
      `--grad-accum ${K} with --sharding ${config.sharding} cannot be combined with --grad-clip ${config.gradClip}: the norm of the accumulated gradient would need every rank's whole sum reduced before the update; drop --grad-clip, or use --batch ${config.batch * K} across the ranks`,
      'E_CONFIG',
    );
  }
}

/** The corpus, with a file system failure (`EIO`, `EACCES`, `EISDIR` …) as an InputError naming the path. */
function readCorpus(corpus: string): ReturnType<typeof loadCorpus> {
  try {
    return loadCorpus(corpus === 'brown' ? { kind: 'brown' } : { kind: 'path', path: corpus });
  } catch (e) {
    if (e instanceof KstarError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new InputError(
      `corpus '${corpus}' cannot be read (${err.code ?? err.name}: ${err.message}): check the path and its permissions, or pass another --corpus`,
      'E_CORPUS_READ',
    );
  }
}

/** Parameters, optimizer state and tied partial gradients of a plan: the non-activation terms of a step's peak. */
export { fixedBytes };

function maxOf(results: StepResult[], key: 'gradPeakBytes' | 'activationPeakBytes' | 'peakBytes'): number {
  return results.reduce((m, r) => Math.max(m, r[key]), 0);
}

/**
 * Tensors a step allocates whole, whatever the plan: every parameter as float32 (split24 materializes float32 copies)
 * and, unless MsT chunks it, the logits [B·T, V].
 */
export function wholeTensors(
  model: GPTModel,
  batch: number,
  seq: number,
  strategies: ReadonlyArray<{ name: string }>,
): PlannedTensor[] {
  const tensors: PlannedTensor[] = [...model.variables].map(([name, v]) => ({
    what: `parameter '${name}' [${v.shape}]`,
    bytes: 4 * v.size,
  }));
  if (!strategies.some((s) => s.name === 'mst')) {
    const V = model.config.vocabSize;
    tensors.push({ what: `the logits [B·T, V] = [${batch * seq}, ${V}]`, bytes: 4 * batch * seq * V });
  }
  return tensors;
}

/** `--init-from`'s weights: a safetensors file, or a directory holding model.safetensors. */
function readInitWeights(path: string, config: GPTConfig): Map<string, Float32Array> {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'model.safetensors') : path;
  if (!existsSync(file)) {
    throw new InputError(
      `--init-from '${file}' does not exist: pass a .safetensors file or a directory holding model.safetensors`,
      'E_CONFIG',
    );
  }
  return decodeHfGpt2(new Uint8Array(readFileSync(file)), config, file);
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
      { tokens: run.config.sampleTokens, temperature: 0.8, topK: 40, seed: run.config.seed },
      () => {},
      gathered ?? params,
    );
    return { prompt, text: run.tokenizer.decode(ids) };
  } finally {
    if (params) tf.dispose(Object.values(params));
  }
}

/** Train per the config. Resolves with the report (also when stopped early). */
export async function train(run: PreparedRun, io: TrainIO): Promise<TrainReport> {
  const { config, lr, seq, dataset } = run;
  // tfjs's banner advising tfjs-node (on the first cpu tensor) is not K*'s to print: a refused run prints one line.
  tf.env().set('PROD', true);
  // Probe lines wait until the memory check has passed: a refused run prints one line only.
  const probeLines: string[] = [];
  preparePrecision(config);
  const { backend } = await selectTrainerBackend(config.backend, { log: (line) => probeLines.push(line) });
  await applyPrecision(backend, config);
  // The weights alone, before building them: a model that cannot exist is refused without allocating it.
  checkStepFits(4 * countParamsFormula(run.modelConfig), backend, {
    what: `the ${config.preset} model's float32 weights (context ${run.modelConfig.blockSize})`,
  });
  const ledger = new MemoryLedger();
  const entry = optimizerEntry(config.optimizer);
  // --grad-clip: LOMO and AdaLomo clip with their own two-pass step (built so in prepareRun); others are wrapped.
  const base = run.optimizer;
  // --grad-accum with --grad-clip: the accumulation clips the summed gradient itself (see grad-accum.ts).
  const accum =
    config.gradAccum > 1
      ? new GradAccumulation(config.gradAccum, inPlaceGradAccumulator, config.gradClip)
      : undefined;
  const clipped =
    config.gradClip !== undefined && !entry.trainStep && !accum
      ? scaledOptimizer(base, config.gradClip)
      : undefined;
  // Under ZeRO the accumulation wraps the sharding plugin's gradient consumer instead (see grad-accum.ts).
  const optimizer = accum && config.sharding === 'none' ? accum.wrap(base) : (clipped ?? base);
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
  const resume = run.resume?.checkpoint;
  if (run.initWeights && !resume) {
    for (const [name, v] of model.variables) {
      const values = run.initWeights.get(name)!;
      tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
    }
  }
  // ZeRO-3 checkpoints hold each rank's parameter shards instead (restored once the engine has sharded the model).
  if (resume?.files.has(MODEL_FILE)) {
    try {
      const origin = `${resume.dir}/${MODEL_FILE}`;
      restoreWeights(resume.files.get(MODEL_FILE)!, origin, model, masterWeights);
    } catch (e) {
      masterWeights?.dispose();
      model.dispose();
      ledger.detach();
      throw e;
    }
  }
  // --grad-accum: one float32 gradient per parameter waits between micro-batches (the plans count it).
  const accumBytes = accumulatedGradBytes(config.gradAccum, model.paramCount);
  const fixedAll = { ...fixedBytes(model, optimizer as never, masterWeights), accumulatedGrads: accumBytes };
  // --offload-state: only the parameters being updated hold their state on the device.
  const stateOffloaded = config.offloadState && offloadEffective(backend);
  // --host-update: the state never reaches the device (on any backend).
  const fixed = config.hostUpdate
    ? { ...fixedAll, optimizerState: 0 }
    : stateOffloaded
      ? { ...fixedAll, optimizerState: offloadedStateDeviceBytes(model, optimizer) }
      : fixedAll;
  let planned: PlannedActivations;
  const seqOf = (step: number) => (run.seqSchedule ? seqAt(run.seqSchedule, step) : seq);
  let planner: AdaptivePlanner | undefined;
  const calibration = loadCalibration();
  try {
    // Before the first step: a budget that cannot be met is an InputError naming the predicted bytes.
    requireBudgetForStateChoices(run);
    if (run.memoryBudget !== undefined) {
      planner = plannerFor(run, { backend, model, optimizer, fixed, calibration, log: (l) => io.log.log(l) });
      await planner.make(
        1,
        seqOf(1),
        'start',
        run.memoryBudget === 'auto' ? `auto budget on ${backend}` : '',
      );
      saveCalibration(calibration);
      planned = plannedActivations(planner);
    } else
      planned = planActivations({
        spec: run.activations,
        config: run.modelConfig,
        batch: config.batch,
        seq,
        backend: activationBackendOf(backend),
        userMode: config.mode,
        defaultSegments:
          config.mode === 'segmented'
            ? segmentPlan(run.modelConfig.nLayer, config.blocksPerSegment)
            : undefined,
        fixed,
      });
    checkStepFits(planned.predictedPeakBytes, backend, {
      what: `a step of batch ${config.batch} × seq ${seq}${accum ? ` with ${accum.micro} accumulated micro-batches` : ''}`,
    });
    if (backend === 'webgpu') {
      checkTensorsFit(
        wholeTensors(model, config.batch, seq, planned.strategies),
        webgpuBufferLimit(webgpuDevice()),
      );
    }
  } catch (e) {
    model.dispose();
    ledger.detach();
    throw e;
  }
  for (const line of probeLines) io.log.log(line);
  const choice = planned.choice;
  const segments = choice.segments;
  const guard = config.spikeGuard === undefined ? undefined : new SpikeGuard(config.spikeGuard);
  // --state-choices: each parameter's state where the first plan put it (8-bit, host memory or the optimizer's own).
  const placement = planner?.placement();
  const placed =
    placement && placement.size > 0
      ? placedOptimizer(composition.optimizer, placement)
      : config.offloadState
        ? offloadState(composition.optimizer, {
            offload: () => true,
            ...(config.hostUpdate
              ? { update: hostAdamW(() => (composition.optimizer as AdamWPlugin).hparams) }
              : {}),
          })
        : undefined;
  const engine = new TrainingEngine(model, {
    ...(guard
      ? { skipUpdate: (loss: number, step: number) => guard.check(accum ? accum.meanLoss(loss) : loss, step) }
      : {}),
    ...(accum ? { onGradient: accum.onGradient } : {}),
    optimizer: placed ?? composition.optimizer,
    mode: choice.mode,
    ...(segments && choice.segmentsBy === 'engine' ? { segments } : {}),
    activations: planned.strategies,
    ledger,
    gradAccumulator: inPlaceGradAccumulator,
    ...(masterWeights ? { masterWeights } : {}),
    ...(sharding ? { sharding: accum ? accum.wrapSharding(sharding) : sharding } : {}),
    ...(config.updateChunkBytes
      ? { updatePartition: { chunkBytes: config.updateChunkBytes, writer: sliceWriter } }
      : {}),
    ...(planner ? planner.engineOptions() : {}),
    ...(process.env.KSTAR_INJECT_OOM ? { onSegment: injectedOutOfMemory(process.env.KSTAR_INJECT_OOM) } : {}),
    ...(resume ? { initialStep: resume.trainer.step } : {}),
  });
  if (resume) {
    if (sharding) restoreShardedCheckpoint(resume, sharding, engine.optimizer.name, masterWeights);
    else
      restoreOptimizerState(resume.files.get(optimizerFile(0))!, `${resume.dir}/${optimizerFile(0)}`, engine);
    dataset.rngState = resume.trainer.samplerState;
    io.log.log(
      `kstar: resumed from ${resume.dir} at step ${resume.trainer.step}` +
        (run.resume!.changes.length ? ` (changed: ${run.resume!.changes.join('; ')})` : ''),
    );
  }
  // Offloaded optimizer state leaves the device once its first copy-out lands: before step 1.
  await placed?.settled();
  // LOMO/AdaLomo's global-norm clipping under ZeRO: a norm pass over the global batch (see sharded-lomo.ts).
  // --grad-clip under ZeRO: the same norm pass, scaling through the clipped optimizer.
  const shardedNorm = sharding && clipped ? shardedGlobalNorm(engine, sharding) : undefined;
  const shardedStep =
    sharding && entry.trainStep
      ? shardedLomoStep(engine, sharding)
      : shardedNorm && clipped
        ? async (b: Batch) => {
            const norm = await shardedNorm(b);
            clipped.scale = Math.min(1, config.gradClip! / (norm + 1e-6));
            try {
              return { ...(await engine.trainStep(b)), gradNorm: norm };
            } finally {
              clipped.scale = 1;
            }
          }
        : undefined;
  const startStep = (resume?.trainer.step ?? 0) + 1;
  const pastLosses = resume?.trainer.losses ?? [];
  const checkpoints: string[] = [];
  // Seconds the loop was blocked by saves (the copy to host memory, a wait for the previous write, the last wait).
  let saveSeconds = 0;
  // One process: the copy to host memory blocks the loop; encoding and writing run while the next steps train.
  const checkpointWriter = new BackgroundCheckpointWriter();
  const save = async (step: number) => {
    if (!config.saveDir) return;
    const t0 = performance.now();
    const trainer: TrainerState = {
      step,
      samplerState: dataset.rngState,
      schedule: { peakLr: lr, warmup: Math.min(config.warmup, config.steps - 1), totalSteps: config.steps },
      config: { ...config, lr, mode: choice.mode, resume: undefined },
      model: { ...run.modelConfig },
      losses: [...pastLosses, ...losses],
    };
    const split = masterWeights ? { split: masterWeights } : {};
    // Under ZeRO every rank writes its own shard (see checkpoint/sharded.ts).
    const path = sharding
      ? await saveShardedCheckpoint(config.saveDir, config.keep, {
          sharding,
          optimizerName: engine.optimizer.name,
          model,
          trainer,
          ...split,
        })
      : await startCheckpoint(
          checkpointWriter,
          config.saveDir,
          config.keep,
          { engine, model, trainer, ...split },
          io.checkpointHooks,
        );
    saveSeconds += (performance.now() - t0) / 1000;
    checkpoints.push(path);
  };
  io.log.log(
    `kstar: ${config.preset} (${model.paramCount.toLocaleString('en-US')} params) on ${run.corpusName} ` +
      `(${dataset.tokens.length.toLocaleString('en-US')} ${run.tokenizer.name} tokens), ${backend} backend, ${planned.choice.mode} mode, ` +
      `${config.optimizer} lr ${lr}${masterWeights ? `, ${masterWeights.name} weights` : ''}, batch ${config.batch} × seq ${seq}${accum ? ` × ${accum.micro} accumulated micro-batches` : ''}, ${config.steps} steps` +
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

  const valBatches =
    config.evalEvery > 0 || config.evalOnly ? dataset.valBatches(config.batch, seq, config.evalBatches) : [];
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
  // Live tensors (and cuda's device bytes in use) after each step: a leak shows as a rising level.
  const stepTensors: number[] = [];
  const stepGpuBytes: number[] = [];
  const valLosses: Array<{ step: number; loss: number }> = [];
  const results: StepResult[] = [];
  let trainSeconds = 0;
  let tokens = 0;
  let lastVal: number | undefined;
  let failed: TrainReport['failed'];
  const started = performance.now();
  let logFd: number | undefined;
  const sentBefore = sharding?.collective.bytesSent() ?? 0;
  try {
    if (config.evalOnly) {
      const loss = await evaluate();
      valLosses.push({ step: startStep - 1, loss });
      io.log.log(`kstar: validation loss ${loss.toFixed(4)} at step ${startStep - 1} (--eval-only)`);
    } else if (startStep > config.steps) {
      throw new InputError(
        `the checkpoint is at step ${startStep - 1} and the run has --steps ${config.steps}: pass --steps ${startStep} or more to continue`,
        'E_CONFIG',
      );
    }
    // Under ZeRO rank 0 alone writes the step log (every rank has the same loss and norm; one writer, whole lines).
    logFd = config.log && rank === 0 ? openSync(config.log, resume ? 'a' : 'w') : undefined;
    for (let step = startStep; step <= config.steps && !config.evalOnly; step++) {
      checkpointWriter.throwIfFailed(); // a background checkpoint write that failed ends the run here
      const stepLr = learningRateAt(step, config.steps, lr, Math.min(config.warmup, config.steps - 1));
      // On the plugin itself: wrappers (clipping, accumulation) read it through their prototype.
      if ('learningRate' in base) base.learningRate = stepLr;
      const stepSeq = seqOf(step);
      await planner?.beforeStep(engine, step, stepSeq);
      // --grad-accum K: K micro-batches drawn in order (the same rows as one batch of K × B).
      const micro = Array.from({ length: accum?.micro ?? 1 }, () =>
        dataset.trainBatch(config.batch, stepSeq),
      );
      // Every rank draws the same global batches (same seed) and trains on its own rows of them.
      const mine = ranks > 1 ? micro.map((b) => rankBatch(b, rank, ranks)) : micro;
      const batch = mine.at(-1)!;
      const t0 = performance.now();
      let r: StepResult;
      try {
        const one = (b: typeof batch) =>
          shardedStep
            ? shardedStep(b)
            : clipped
              ? clippedStep(engine, clipped, b, config.gradClip!, inPlaceGradAccumulator)
              : entry.trainStep
                ? entry.trainStep(engine, b)
                : engine.trainStep(b);
        // On WebGPU: inside error scopes; a validation/out-of-memory error or a lost device throws TrainingError(step).
        const once = () => guardWebGPUStep(step, () => (accum ? accum.step(engine, mine, one) : one(batch)));
        // With the planner: an out-of-memory error re-plans tighter and retries this step with this batch.
        r = await (planner ? planner.guard(engine, step, once) : once());
        await planner?.afterStep(engine, r, step + 1);
      } catch (e) {
        // A non-finite loss, a device error or any other failure inside the step: the steps before it are kept and
        // the report says why it ended (with the stack when it is not a TrainingError: that is a bug to report).
        failed =
          e instanceof TrainingError
            ? { step: e.step, reason: e.message }
            : {
                step,
                reason: `step ${step} failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
                ...(e instanceof Error && e.stack ? { stack: e.stack } : {}),
              };
        break;
      } finally {
        tf.dispose([...mine, ...micro].flatMap((b) => [b.inputs, b.targets]));
      }
      const seconds = (performance.now() - t0) / 1000;
      stepSeconds.push(seconds);
      stepTensors.push(tf.memory().numTensors);
      const inUse = cudaMemory().gpuBytesInUse;
      if (inUse !== undefined) stepGpuBytes.push(inUse);
      trainSeconds += seconds;
      results.push(r);
      losses.push(r.loss);
      if (r.skipped && guard) {
        const s = guard.skipped.at(-1)!;
        io.log.log(
          `kstar: step ${step}: loss ${r.loss.toFixed(4)} is over ${guard.factor} × the recent median ${s.median.toFixed(4)}: update skipped (--spike-guard)`,
        );
      }
      tokens += config.batch * config.gradAccum * stepSeq;
      const tokensPerSecond = tokens / trainSeconds;
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
      if (logFd !== undefined) {
        const gradNorm = (r as { gradNorm?: number | null }).gradNorm;
        const line = {
          step,
          loss: r.loss,
          lr: stepLr,
          seconds,
          ...(gradNorm != null ? { gradNorm } : {}),
          ...(valLosses.at(-1)?.step === step ? { valLoss: valLosses.at(-1)!.loss } : {}),
        };
        writeSync(logFd, `${JSON.stringify(line)}\n`);
      }
      // Let signal handlers (Ctrl-C, SIGTERM, SIGHUP, the parent watch) run between steps.
      await new Promise((resolve) => setImmediate(resolve));
      const stopping = io.stop?.requested === true && step < config.steps;
      if (step === config.steps || stopping || (config.saveEvery > 0 && step % config.saveEvery === 0))
        await save(step);
      if (stopping) {
        io.log.done();
        io.log.log(
          `kstar: stopped after step ${step} (${io.stop?.describe?.() ?? 'stop requested'}); ${config.saveDir ? `checkpoint ${checkpoints.at(-1)}, ` : ''}writing the report`,
        );
        if (valBatches.length > 0 && valLosses.at(-1)?.step !== step)
          valLosses.push({ step, loss: await evaluate() });
        break;
      }
    }
  } finally {
    if (logFd !== undefined) closeSync(logFd);
    io.log.done();
    // The end, a stop or a failure: the checkpoint being written is finished first (whole or not at all).
    const t0 = performance.now();
    await checkpointWriter.idle();
    saveSeconds += (performance.now() - t0) / 1000;
  }
  checkpointWriter.throwIfFailed();
  const wallSeconds = (performance.now() - started) / 1000;
  if (planner) {
    saveCalibration(calibration);
    planned = plannedActivations(planner); // the last plan: what the final steps ran
  }
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
      ? { 'grads:tied-waiting': fixed.waitingGrads(planned.choice.segments) }
      : {}),
    // --grad-accum: the float32 sum of the earlier micro-batches' gradients, alive through the later ones.
    ...(accum ? { 'grads:accumulated': accumBytes } : {}),
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
            waitSeconds: checkpointWriter.waitSeconds,
            writeSeconds: checkpointWriter.writeSeconds,
          },
        }
      : {}),
    losses,
    stepSeconds,
    stepTensors,
    ...(stepGpuBytes.length > 0 ? { stepGpuBytes } : {}),
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
  tf.dispose(valBatches.flatMap((b) => [b.inputs, b.targets]));
  engine.dispose();
  placed?.dispose();
  masterWeights?.dispose();
  model.dispose(); // variables adopted by a master-weights plugin are already disposed
  ledger.detach();
  return report;
}
