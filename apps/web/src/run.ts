import { checkpoint, planSegments } from '@kstar/act-checkpoint';
import {
  composePlugins,
  fixedStepBytes,
  MemoryLedger,
  type MemoryReport,
  type OptimizerPlugin,
  type StepResult,
  TrainingEngine,
} from '@kstar/core';
import { type ActivationBackend, createGPT, GPT_PRESETS, generate, predictActivationBytes } from '@kstar/gpt';
import { inPlaceGradAccumulator, selectBackend } from '@kstar/kernels';
import { split24 } from '@kstar/master-split24';
import { adam8bit } from '@kstar/optim-adam8bit';
import { adamw } from '@kstar/optim-adamw';
import * as tf from '@tensorflow/tfjs-core';
import { sampleBatch, textTokens } from './text.ts';

export interface RunChoices {
  optimizer: 'adam8bit' | 'adamw';
  split24: boolean;
  checkpoint: boolean;
  backend: 'auto' | 'webgpu' | 'wasm' | 'cpu';
  steps: number;
  batch: number;
  seq: number;
  /** Tokens of the closing sample (0: none). */
  sampleTokens: number;
}

export interface RunProgress {
  backend: string;
  step: number;
  result: StepResult;
  /** The optimizer plugin's prediction of its state bytes (`stateBytes` summed over the parameters). */
  predictedOptimizerBytes: number;
  seconds: number;
  /** Seconds since the run started (backend selection and model creation included) to the end of this step. */
  elapsedSeconds: number;
  /** The run so far as `kstar train --report` puts it (`memory`): peaks over the steps, the predicted terms. */
  memory: MemoryReport;
  /** Parameters of the model (the ledger's bytes per parameter). */
  params: number;
}

const OPTIMIZERS: Record<RunChoices['optimizer'], (lr: number) => OptimizerPlugin> = {
  adam8bit: (lr) => adam8bit({ lr }),
  adamw: (lr) => adamw({ lr }),
};

/** A text the trained weights generate after a prompt (temperature 0.8, top-k 40, like `kstar train`'s sample). */
export interface PageSample {
  prompt: string;
  text: string;
}

/**
 * Trains the tiny GPT on the built-in text with the chosen plugins, reporting every step; resolves with a sample of
 * generated text (none when `sampleTokens` is 0).
 */
export async function trainInPage(
  choices: RunChoices,
  onStep: (p: RunProgress) => void,
): Promise<PageSample | undefined> {
  const started = performance.now();
  const { backend } = await selectBackend(choices.backend);
  const optimizer = OPTIMIZERS[choices.optimizer](3e-3);
  const masterWeights = choices.split24 ? split24() : undefined;
  const composition = composePlugins(masterWeights ? [optimizer, masterWeights] : [optimizer]);
  const config = { ...GPT_PRESETS.tiny, blockSize: choices.seq };
  const model = createGPT(config, { seed: 1 });
  const params = model.paramCount;
  // The CLI's prediction of the step peak (before the engine adopts the variables): parameters, optimizer state,
  // the GPT's activations for this segment plan, and tied partial gradients waiting for their last segment.
  const fixed = fixedStepBytes(model, optimizer, masterWeights);
  const mode = choices.checkpoint || masterWeights ? 'segmented' : 'full';
  const segments = choices.checkpoint
    ? planSegments('every', model.stages.length)
    : mode === 'segmented'
      ? model.stages.map((_, i) => [i])
      : undefined;
  const predictedActivations = predictActivationBytes(config, {
    batch: choices.batch,
    seq: choices.seq,
    mode,
    backend: backend as ActivationBackend,
    ...(segments ? { segments } : {}),
  });
  const ledger = new MemoryLedger();
  const engine = new TrainingEngine(model, {
    optimizer: composition.optimizer,
    mode,
    activations: choices.checkpoint ? [checkpoint({ plan: 'every' })] : [],
    ledger,
    gradAccumulator: inPlaceGradAccumulator,
    ...(masterWeights ? { masterWeights } : {}),
  });
  const predicted: Record<string, number> = {
    params: fixed.params,
    [`optimizer:${optimizer.name}`]: fixed.optimizerState,
    [choices.checkpoint ? 'activations:gpt+checkpoint' : 'activations:gpt']: predictedActivations,
    ...(segments && !engine.partialGradients ? { 'grads:tied-waiting': fixed.waitingGrads(segments) } : {}),
  };
  const results: StepResult[] = [];
  const tokens = textTokens();
  try {
    for (let step = 1; step <= choices.steps; step++) {
      const batch = sampleBatch(tokens, choices.batch, choices.seq, step);
      const t0 = performance.now();
      let result: StepResult;
      try {
        result = await engine.trainStep(batch);
      } finally {
        tf.dispose([batch.inputs, batch.targets]);
      }
      results.push(result);
      onStep({
        backend,
        step,
        result,
        predictedOptimizerBytes: fixed.optimizerState,
        seconds: (performance.now() - t0) / 1000,
        elapsedSeconds: (performance.now() - started) / 1000,
        memory: memoryReport(results, engine.optimizerStateBytes(), predicted),
        params,
      });
      await new Promise((r) => setTimeout(r, 0)); // let the charts paint
    }
    if (choices.sampleTokens === 0) return undefined;
    // Split24 keeps no float32 weights: the sample reads materialized ones.
    const weights = masterWeights ? masterWeights.materialize(masterWeights.names()) : undefined;
    try {
      const prompt = 'The ';
      const options = { tokens: choices.sampleTokens, temperature: 0.8, topK: 40, random: xorshift(1) };
      const ids = await generate(model, [...new TextEncoder().encode(prompt)], options, () => {}, weights);
      return { prompt, text: new TextDecoder().decode(Uint8Array.from(ids)) };
    } finally {
      if (weights) tf.dispose(Object.values(weights));
    }
  } finally {
    ledger.detach();
    model.dispose();
  }
}

/** The measured terms as the CLI reports them: the last step's parameters, the peaks over every step so far. */
function memoryReport(
  results: StepResult[],
  optimizerStateBytes: number,
  predicted: Record<string, number>,
): MemoryReport {
  const peak = (key: 'gradPeakBytes' | 'activationPeakBytes' | 'peakBytes') =>
    results.reduce((m, r) => Math.max(m, r[key]), 0);
  return {
    paramBytes: results.at(-1)!.paramBytes,
    gradBytes: peak('gradPeakBytes'),
    optimizerStateBytes,
    activationPeakBytes: peak('activationPeakBytes'),
    peakBytes: peak('peakBytes'),
    predictedPeakBytes: Object.values(predicted).reduce((a, b) => a + b, 0),
    predicted,
  };
}

/** Uniform draws in [0, 1) from a seeded 32-bit xorshift (@kstar/data's Rng lives in a Node-only package). */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}
