import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { EngineMode, OptimizerPlugin } from '@kstar/core';
import { InputError, KstarError, parseBytes } from '@kstar/core';
import { createTokenizer, type DocumentPacker, loadCorpus, TokenDataset, type Tokenizer } from '@kstar/data';
import { decodeHfGpt2, GPT_PRESETS, type GPTConfig, resolveConfig } from '@kstar/gpt';
import { type ActivationSpec, activationModeFor, parseActivations } from './activations.ts';
import type { LoadedCheckpoint } from './checkpoint/read.ts';
import type { TrainConfig } from './config.ts';
import { optimizerEntry } from './optimizers.ts';
import { packerFor, parseLengthBuckets } from './packing.ts';
import { checkOffloadState, checkStateChoices, type StateChoice } from './plan-state.ts';
import { parseSeqSchedule } from './seq-schedule.ts';

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
  /** `--pack-documents`: the training batches (variable length: a bucket each; `seq` is the longest bucket). */
  packer?: DocumentPacker;
  /** `--state-choices`: optimizer-state placements the planner may pick per parameter group (float32 first). */
  stateChoices?: StateChoice[];
  /** --mode as the user gave it (`config.mode` is the mode decided): a budget's planner keeps to it (`plannerFor`). */
  requestedMode?: EngineMode;
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
  const mode = activationModeFor(activations, config.mode, entry.requiresMode);
  const memoryBudget =
    config.memoryBudget === undefined || config.memoryBudget === 'auto'
      ? config.memoryBudget
      : parseBytes(config.memoryBudget, 'memory budget');
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
  const lengthBuckets =
    config.packDocuments && config.lengthBuckets ? parseLengthBuckets(config.lengthBuckets) : undefined;
  const seq = seqSchedule
    ? Math.max(...seqSchedule.map((s) => s.seq))
    : (lengthBuckets?.at(-1) ?? config.seq ?? defaultSeq);
  if (lengthBuckets && seq > modelConfig.blockSize) {
    throw new InputError(
      `--length-buckets ${config.lengthBuckets}: the longest bucket ${seq} is longer than the model's context ${modelConfig.blockSize} (preset ${config.preset}): use buckets up to ${modelConfig.blockSize} or a larger --context`,
      'E_CONFIG',
    );
  }
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
  const packer = packerFor(config, seq, tokenizer, dataset);
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
    ...(config.mode ? { requestedMode: config.mode } : {}),
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
    ...(packer ? { packer } : {}),
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
