import type { OptimizerPlugin } from '@kstar/core';
import { SPECIFICATION_VERSION } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';

/** Plain SGD as an optimizer plugin (w −= lr·g, no state): the smallest optimizer a test can step with. */
export function sgdPlugin(lr: number): OptimizerPlugin {
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'optimizer',
    name: 'sgd',
    learningRate: lr,
    describe: () => ({ lr }),
    init: () => ({}),
    update(param, grad) {
      const step = this.learningRate ?? lr;
      tf.tidy(() => param.assign(tf.sub(param, tf.mul(grad, step))));
    },
    stateBytes: () => 0,
  };
}
