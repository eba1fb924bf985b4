import { composePlugins, fixedStepBytes, type OptimizerPlugin } from '@kstar/core';
import type { GPTModel } from '@kstar/gpt';
import { type Split24Plugin, split24 } from '@kstar/master-split24';
import type { ZeroPlugin } from '@kstar/shard-zero';
import { accumulatedGradBytes } from '@kstar/train-loop';
import type { TrainConfig } from './config.ts';

/**
 * The run's plugins checked together (`composePlugins`): the optimizer, `--master-weights split24` and, under
 * `--sharding`, the collective and the ZeRO plugin. `kstar train` and `kstar plan` compose the same way.
 */
export function composeRunPlugins(
  config: Pick<TrainConfig, 'masterWeights'>,
  optimizer: OptimizerPlugin,
  sharding?: ZeroPlugin,
): { masterWeights: Split24Plugin | undefined; composition: ReturnType<typeof composePlugins> } {
  const masterWeights = config.masterWeights === 'split24' ? split24() : undefined;
  const composition = composePlugins([
    optimizer,
    ...(masterWeights ? [masterWeights] : []),
    ...(sharding ? [sharding.collective, sharding] : []),
  ]);
  return { masterWeights, composition };
}

/**
 * The non-activation terms of a step's peak: parameters (as `masterWeights` stores them), optimizer state, tied
 * partial gradients of a plan, and `--grad-accum`'s float32 gradient sum alive between micro-batches.
 */
export function runFixedBytes(
  model: GPTModel,
  optimizer: OptimizerPlugin,
  masterWeights: Split24Plugin | undefined,
  gradAccum: number,
) {
  return {
    ...fixedStepBytes(model, optimizer as never, masterWeights),
    accumulatedGrads: accumulatedGradBytes(gradAccum, model.paramCount),
  };
}
