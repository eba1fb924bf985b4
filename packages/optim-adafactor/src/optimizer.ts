import { type DropInOptimizer, dropInOptimizerClass } from '@kstar/core';
import { type AdafactorPlugin, adafactor } from './plugin.ts';

/**
 * A drop-in `tf.Optimizer` running Adafactor (HF `transformers.optimization.Adafactor` semantics) through the
 * fused in-place `KstarAdafactor` kernel: `adafactor()` behind `@kstar/core`'s `DropInOptimizer`.
 *
 * Each variable keeps its own step counter as HF does (`state["step"]`): a variable first updated at global step k
 * starts at its own step 1. Checkpoints carry, per variable, `<var>/exp_avg_sq_row`, `<var>/exp_avg_sq_col` (or
 * `<var>/exp_avg_sq`), `<var>/exp_avg` with beta1, and `<var>/step` (int32 scalar), after the global `iter`.
 * With `relativeStep` (the default) there is no learning rate to schedule: assigning one throws `InputError`.
 */
export const Adafactor = dropInOptimizerClass('Adafactor', adafactor, { stepCount: 'per-variable' });
export type Adafactor = DropInOptimizer<AdafactorPlugin>;
