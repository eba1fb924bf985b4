import { DropInOptimizer } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import type { Adam8bitOptions } from './hparams.ts';
import { type Adam8bitImpl, type Adam8bitPlugin, adam8bit } from './plugin.ts';

/**
 * A drop-in `tf.Optimizer` running 8-bit Adam through the fused `KstarAdam8bit` kernel: `adam8bit()` behind
 * `@kstar/core`'s `DropInOptimizer`. Variables are told apart by rank only (no embedding role). `getWeights`
 * carries the int32 codes and float32 absmax verbatim (`<variable>/c1`, `a1`, `c2`, `a2`; `m`, `v` below
 * `minQuantizedSize`), so save → load → step is bit-identical to an uninterrupted step.
 */
export class Adam8bit extends DropInOptimizer<Adam8bitPlugin> {
  /** @nocollapse */
  static get className(): string {
    return 'Adam8bit';
  }

  constructor(options: Adam8bitOptions & { impl?: Adam8bitImpl } = {}) {
    super(adam8bit(options));
  }
}

tf.serialization.registerClass(Adam8bit);
