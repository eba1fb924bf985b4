import { type DropInOptimizer, dropInOptimizerClass } from '@kstar/core';
import { type AdamWPlugin, adamw } from './plugin.ts';

/**
 * A drop-in `tf.Optimizer` running AdamW (torch.optim.AdamW semantics) through the fused in-place `adamwUpdate`
 * kernel: `adamw()` behind `@kstar/core`'s `DropInOptimizer` (state `<variable>/m`, `<variable>/v`).
 *
 * Bias correction uses the optimizer's global step `iterations + 1` (as `tf.train.adam` does), so a variable
 * first updated at step k starts with step k's correction, not step 1's as in torch's per-parameter counter.
 */
export const AdamW = dropInOptimizerClass('AdamW', adamw);
export type AdamW = DropInOptimizer<AdamWPlugin>;
