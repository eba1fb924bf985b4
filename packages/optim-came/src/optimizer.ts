import { DropInOptimizer } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import type { CameOptions } from './hparams.ts';
import { type CameImpl, type CamePlugin, came } from './plugin.ts';

/**
 * A drop-in `tf.Optimizer` running CAME (`came_pytorch.CAME` semantics) through the fused in-place kernels:
 * `came()` behind `@kstar/core`'s `DropInOptimizer`. Weights are named `<variable>/<key>` with the plugin's state
 * keys (factored statistics for rank ≥ 2, full ones for vectors), after the int32 `iter`. `lr` is required.
 */
export class CAME extends DropInOptimizer<CamePlugin> {
  /** @nocollapse */
  static get className(): string {
    return 'CAME';
  }

  constructor(options: CameOptions & { impl?: CameImpl }) {
    super(came(options));
  }
}

tf.serialization.registerClass(CAME);
