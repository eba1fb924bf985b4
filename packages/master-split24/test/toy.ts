// Copied from packages/core/test/toy.ts (the engine's toy model), trimmed: a plugin test may not import another package's tests.

import type { OptimizerPlugin, OptimizerState, ParamInfo, Stage, StagedModel } from '@kstar/core';
import { SPECIFICATION_VERSION } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';

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
