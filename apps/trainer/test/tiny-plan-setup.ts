import type { OptimizerPlugin } from '@kstar/core';
import { createGPT, type GPTConfig, type GPTModel, resolveConfig } from '@kstar/gpt';
import { selectBackend } from '@kstar/kernels';
import type { FixedBytes } from '../src/activations.ts';
import { optimizerEntry } from '../src/optimizers.ts';
import { fixedBytes } from '../src/train.ts';

/** What the planner tests plan for: a preset's model (seed 1) and an AdamW plugin on wasm, with their fixed bytes. */
export interface PlanSetup {
  config: GPTConfig;
  model: GPTModel;
  optimizer: OptimizerPlugin;
  fixed: FixedBytes;
}

/** Selects wasm and builds `preset`'s model and AdamW at `lr`: the caller disposes `setup.model`. */
export async function tinyPlanSetup(preset: 'tiny' | 'small' = 'tiny', lr = 1e-3): Promise<PlanSetup> {
  await selectBackend('wasm');
  const config = resolveConfig(preset, {});
  const model = createGPT(config, { seed: 1 });
  const optimizer = optimizerEntry('adamw').create(lr, {});
  return { config, model, optimizer, fixed: fixedBytes(model, optimizer) };
}

/** The tiny preset's config and fixed bytes (model + AdamW on wasm), the model already disposed. */
export async function tinyFixedBytes(): Promise<Pick<PlanSetup, 'config' | 'fixed'>> {
  const { config, model, fixed } = await tinyPlanSetup();
  model.dispose();
  return { config, fixed };
}

/** `kstar plan` on wasm at batch 2 (the tiny preset unless `flags` say otherwise), then `flags`. */
export const planArgv = (...flags: string[]): string[] => [
  'plan',
  '--backend',
  'wasm',
  '--batch',
  '2',
  ...flags,
];
