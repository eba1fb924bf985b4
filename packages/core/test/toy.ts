import * as tf from '@tensorflow/tfjs';

// The toy staged model, toy optimizers and callUntyped live in the test kit (shared with the plugins' tests); core
// reaches them by path because @kstar/testkit depends on @kstar/core.
export { callUntyped } from '../../../testkit/src/option-checks.ts';
export { momentum, sgd } from '../../../testkit/src/toy-optimizers.ts';
export { randomBatch, toyModel } from '../../../testkit/src/toy-staged-model.ts';

/** An in-place gradient accumulator for the cpu backend (what @kstar/kernels provides for every backend). */
export const cpuInPlaceAccumulator = {
  inPlace: true,
  add(acc: tf.Tensor, g: tf.Tensor): tf.Tensor {
    const backend = tf.backend() as tf.KernelBackend & {
      data: { get(id: object): { values: Float32Array } };
    };
    const a = backend.data.get(acc.dataId).values;
    const b = backend.data.get(g.dataId).values;
    for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
    return acc;
  },
};
