import type { OptimizerPlugin, OptimizerState } from '@kstar/core';
import { SPECIFICATION_VERSION } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';

/** Plain SGD as an optimizer plugin: no state. */
export function sgd(lr: number): OptimizerPlugin {
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'optimizer',
    name: 'sgd',
    describe: () => ({ lr }),
    init: (): OptimizerState => ({}),
    update: (param, grad) => {
      tf.tidy(() => param.assign(tf.sub(param, tf.mul(grad, lr))));
    },
    stateBytes: () => 0,
  };
}

/** SGD with momentum: one state tensor per parameter (to exercise state accounting). */
export function momentum(lr: number, beta: number): OptimizerPlugin {
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'optimizer',
    name: 'momentum',
    describe: () => ({ lr, beta }),
    init: (p): OptimizerState => ({ m: tf.tidy(() => tf.variable(tf.zeros(p.shape as number[]), false)) }),
    update: (param, grad, state) => {
      const m = state.m as tf.Variable;
      tf.tidy(() => {
        m.assign(tf.add(tf.mul(m, beta), grad));
        param.assign(tf.sub(param, tf.mul(m, lr)));
      });
    },
    stateBytes: (shape) => 4 * shape.reduce((a, b) => a * b, 1),
  };
}
