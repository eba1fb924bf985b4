import { type DropInOptimizer, dropInOptimizerClass } from '@kstar/core';
import { type LionPlugin, lion } from './plugin.ts';

/**
 * A drop-in `tf.Optimizer` running Lion (lion_pytorch semantics) through the fused in-place `KstarLion` kernel:
 * `lion()` behind `@kstar/core`'s `DropInOptimizer` (state `<variable>/m`, `getConfig`/`fromConfig` from the
 * hyper-parameters with lr₀ kept for decoupled decay, same-process reload by position). Lion has no step-dependent
 * term: `iterations` only counts steps.
 */
export const Lion = dropInOptimizerClass('Lion', lion);
export type Lion = DropInOptimizer<LionPlugin>;
