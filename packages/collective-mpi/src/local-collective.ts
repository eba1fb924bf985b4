import { type Collective, SPECIFICATION_VERSION } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';

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
    barrier: async () => {},
    bytesSent: () => 0,
    close: async () => {},
  };
}
