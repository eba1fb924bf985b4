import { type Collective, SPECIFICATION_VERSION } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';

/** Flat `x` zero-padded to `n` elements (a new tensor). */
function padded(x: tf.Tensor, n: number): tf.Tensor {
  return tf.tidy(() => {
    const flat = tf.reshape(x, [x.size]);
    return n === x.size ? tf.clone(flat) : tf.pad(flat, [[0, n - x.size]]);
  });
}

/** The collective of a single process (one rank): every operation returns a copy of its input. Needs no MPI. */
export function localCollective(): Collective & { close(): Promise<void> } {
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'collective',
    name: 'local',
    rank: 0,
    size: 1,
    describe: () => ({ ranks: 1 }),
    allReduce: async (x) => tf.clone(x),
    reduce: async (x) => tf.clone(x),
    reduceScatter: async (x) => tf.tidy(() => tf.reshape(tf.clone(x), [x.size])),
    allGather: async (x) => tf.tidy(() => tf.reshape(tf.clone(x), [x.size])),
    broadcast: async (x) => tf.clone(x),
    allReduceBucket: async (xs) => xs.map((x) => tf.clone(x)),
    reduceBucket: async (xs) => xs.map((x) => tf.clone(x)),
    reduceScatterBucket: async (xs, sizes) => xs.map((x, i) => padded(x, sizes[i]!)),
    allGatherBucket: async (xs, sizes) => xs.map((x, i) => padded(x, sizes[i]!)),
    broadcastBucket: async (xs) => xs.map((x) => tf.clone(x)),
    barrier: async () => {},
    bytesSent: () => 0,
    close: async () => {},
  };
}
