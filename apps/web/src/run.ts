import { checkpoint } from '@kstar/act-checkpoint';
import {
  composePlugins,
  MemoryLedger,
  type OptimizerPlugin,
  type StepResult,
  TrainingEngine,
} from '@kstar/core';
import { createGPT, GPT_PRESETS } from '@kstar/gpt';
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
}

export interface RunProgress {
  backend: string;
  step: number;
  result: StepResult;
  /** The optimizer plugin's prediction of its state bytes (`stateBytes` summed over the parameters). */
  predictedOptimizerBytes: number;
  seconds: number;
}

const OPTIMIZERS: Record<RunChoices['optimizer'], (lr: number) => OptimizerPlugin> = {
  adam8bit: (lr) => adam8bit({ lr }),
  adamw: (lr) => adamw({ lr }),
};

/** Trains the tiny GPT on the built-in text with the chosen plugins, reporting every step. */
export async function trainInPage(choices: RunChoices, onStep: (p: RunProgress) => void): Promise<void> {
  const { backend } = await selectBackend(choices.backend);
  const optimizer = OPTIMIZERS[choices.optimizer](3e-3);
  const masterWeights = choices.split24 ? split24() : undefined;
  const composition = composePlugins(masterWeights ? [optimizer, masterWeights] : [optimizer]);
  const model = createGPT({ ...GPT_PRESETS.tiny, blockSize: choices.seq }, { seed: 1 });
  let predictedOptimizerBytes = 0;
  for (const v of model.variables.values()) predictedOptimizerBytes += optimizer.stateBytes(v.shape);
  const ledger = new MemoryLedger();
  const engine = new TrainingEngine(model, {
    optimizer: composition.optimizer,
    mode: choices.checkpoint || masterWeights ? 'segmented' : 'full',
    activations: choices.checkpoint ? [checkpoint({ plan: 'every' })] : [],
    ledger,
    gradAccumulator: inPlaceGradAccumulator,
    ...(masterWeights ? { masterWeights } : {}),
  });
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
      onStep({ backend, step, result, predictedOptimizerBytes, seconds: (performance.now() - t0) / 1000 });
      await new Promise((r) => setTimeout(r, 0)); // let the charts paint
    }
  } finally {
    ledger.detach();
    model.dispose();
  }
}
