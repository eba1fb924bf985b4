import { type DropInOptimizer, dropInOptimizerClass } from '@kstar/core';
import { type CamePlugin, came } from './plugin.ts';

/**
 * A drop-in `tf.Optimizer` running CAME (`came_pytorch.CAME` semantics) through the fused in-place kernels:
 * `came()` behind `@kstar/core`'s `DropInOptimizer`. Weights are named `<variable>/<key>` with the plugin's state
 * keys (factored statistics for rank ≥ 2, full ones for vectors), after the int32 `iter`. `lr` is required.
 */
export const CAME = dropInOptimizerClass('CAME', came);
export type CAME = DropInOptimizer<CamePlugin>;
