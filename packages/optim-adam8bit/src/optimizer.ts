import { type DropInOptimizer, dropInOptimizerClass } from '@kstar/core';
import { type Adam8bitPlugin, adam8bit } from './plugin.ts';

/**
 * A drop-in `tf.Optimizer` running 8-bit Adam through the fused `KstarAdam8bit` kernel: `adam8bit()` behind
 * `@kstar/core`'s `DropInOptimizer`. Variables are told apart by rank only (no embedding role). `getWeights`
 * carries the int32 codes and float32 absmax verbatim (`<variable>/c1`, `a1`, `c2`, `a2`; `m`, `v` below
 * `minQuantizedSize`), so save → load → step is bit-identical to an uninterrupted step.
 */
export const Adam8bit = dropInOptimizerClass('Adam8bit', adam8bit);
export type Adam8bit = DropInOptimizer<Adam8bitPlugin>;
