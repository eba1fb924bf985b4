import { DropInOptimizer } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import type { LionOptions } from './hparams.ts';
import { type LionImpl, type LionPlugin, lion } from './plugin.ts';

/**
 * A drop-in `tf.Optimizer` running Lion (lion_pytorch semantics) through the fused in-place `KstarLion` kernel:
 * `lion()` behind `@kstar/core`'s `DropInOptimizer` (state `<variable>/m`, `getConfig`/`fromConfig` from the
 * hyper-parameters with lr₀ kept for decoupled decay, same-process reload by position). Lion has no step-dependent
 * term: `iterations` only counts steps.
 */
export class Lion extends DropInOptimizer<LionPlugin> {
  /** @nocollapse */
  static get className(): string {
    return 'Lion';
  }

  constructor(options: LionOptions & { impl?: LionImpl } = {}) {
    super(lion(options));
  }
}

tf.serialization.registerClass(Lion);
