import type { OptimizerPlugin, OptimizerState } from '@kstar/core';
import { SPECIFICATION_VERSION, stateVariable } from '@kstar/core';
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

/**
 * SGD with momentum: one state tensor per parameter (to exercise state accounting). With `countUpdates`, the state
 * is two named variables written in place by `assign`, the float32 velocity `<param>/m` and an int32 update count
 * `<param>/count` that scales nothing (the step uses 1 + 0·count) but must travel exactly (state offload).
 */
export function momentum(
  lr: number,
  beta: number,
  options: { countUpdates?: boolean } = {},
): OptimizerPlugin {
  const counted = options.countUpdates === true;
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'optimizer',
    name: 'momentum',
    describe: () => ({ lr, beta }),
    init: (p): OptimizerState =>
      counted
        ? {
            m: stateVariable(`${p.name}/m`, p.shape),
            count: stateVariable(`${p.name}/count`, [1], { dtype: 'int32' }),
          }
        : { m: tf.tidy(() => tf.variable(tf.zeros(p.shape as number[]), false)) },
    update: (param, grad, state) => {
      const m = state.m as tf.Variable;
      const count = state.count as tf.Variable | undefined;
      tf.tidy(() => {
        m.assign(tf.add(tf.mul(m, beta), grad));
        if (count == null) {
          param.assign(tf.sub(param, tf.mul(m, lr)));
          return;
        }
        const scale = tf.add(1, tf.mul(tf.cast(count, 'float32'), 0));
        param.assign(tf.sub(param, tf.mul(tf.mul(m, lr), scale)));
        count.assign(tf.add(count, tf.scalar(1, 'int32')));
      });
    },
    stateBytes: (shape) => 4 * shape.reduce((a, b) => a * b, 1) + (counted ? 4 : 0),
  };
}
