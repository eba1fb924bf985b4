import * as tf from '@tensorflow/tfjs';
import type { OptimizerPlugin, OptimizerState, ParamInfo, Stage, StagedModel } from '../src/index.ts';
import { SPECIFICATION_VERSION } from '../src/index.ts';

/**
 * A tiny staged model with the same structure as a GPT: an embedding stage (gather), `depth` tanh blocks with
 * residuals, and a head whose logits reuse the embedding (tied weights), ending in mean cross-entropy.
 */
let instances = 0;

export function toyModel(opts: { vocab: number; dim: number; depth: number; seed: number }): StagedModel {
  const { vocab, dim, depth, seed } = opts;
  const id = `toy${++instances}`;
  const variables = new Map<string, tf.Variable>();
  tf.tidy(() => {
    variables.set('E', tf.variable(tf.randomNormal([vocab, dim], 0, 0.5, 'float32', seed), true, `${id}/E`));
    for (let i = 0; i < depth; i++) {
      variables.set(
        `W${i}`,
        tf.variable(tf.randomNormal([dim, dim], 0, 0.3, 'float32', seed + 1 + i), true, `${id}/W${i}`),
      );
      variables.set(
        `b${i}`,
        tf.variable(tf.randomNormal([dim], 0, 0.1, 'float32', seed + 101 + i), true, `${id}/b${i}`),
      );
    }
  });
  const stages: Stage[] = [
    {
      name: 'embed',
      params: ['E'],
      forward: (tokens, p) => tf.gather(p.E!, tokens), // [B, T, D]
    },
  ];
  for (let i = 0; i < depth; i++) {
    stages.push({
      name: `block${i}`,
      params: [`W${i}`, `b${i}`],
      forward: (x, p) => {
        const [B, T, D] = x.shape as [number, number, number];
        const h = tf.tanh(tf.add(tf.matMul(tf.reshape(x, [B * T, D]), p[`W${i}`]!), p[`b${i}`]!)); // [B·T, D]
        return tf.add(x, tf.reshape(h, [B, T, D]));
      },
    });
  }
  stages.push({
    name: 'head',
    params: ['E'],
    forward: (x, p, batch) => {
      const [B, T, D] = x.shape as [number, number, number];
      const logits = tf.matMul(tf.reshape(x, [B * T, D]), p.E!, false, true); // [B·T, V]
      const onehot = tf.oneHot(tf.reshape(batch.targets, [B * T]), vocab);
      return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1)));
    },
  });
  return {
    stages,
    variables,
    paramInfo: (name: string): ParamInfo => {
      const shape = variables.get(name)!.shape;
      return { name, shape, role: name === 'E' ? 'embedding' : shape.length === 2 ? 'matrix' : 'vector' };
    },
  };
}

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

export function randomBatch(vocab: number, B: number, T: number, seed: number) {
  return tf.tidy(() => ({
    inputs: tf.randomUniform([B, T], 0, vocab, 'int32', seed),
    targets: tf.randomUniform([B, T], 0, vocab, 'int32', seed + 7),
  }));
}

/** An in-place gradient accumulator for the cpu backend (what @kstar/kernels provides for every backend). */
export const cpuInPlaceAccumulator = {
  inPlace: true,
  add(acc: tf.Tensor, g: tf.Tensor): tf.Tensor {
    const backend = tf.backend() as unknown as { data: { get(id: object): { values: Float32Array } } };
    const a = backend.data.get(acc.dataId).values;
    const b = backend.data.get(g.dataId).values;
    for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
    return acc;
  },
};
