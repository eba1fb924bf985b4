import type { OptimizerPlugin, Stage, StagedModel } from '@kstar/core';
import { SPECIFICATION_VERSION, stateVariable } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';

/** Embedding, `depth` residual ReLU blocks, a linear head with mean squared error against the one-hot target. */
export function residualModel(vocab: number, dim: number, depth: number, seed: number): StagedModel {
  const variables = new Map<string, tf.Variable>();
  const name = `offload-test-${seed}-${Math.random().toString(36).slice(2)}`;
  tf.tidy(() => {
    variables.set(
      'E',
      tf.variable(tf.randomNormal([vocab, dim], 0, 0.5, 'float32', seed), true, `${name}/E`),
    );
    for (let i = 0; i < depth; i++)
      variables.set(
        `W${i}`,
        tf.variable(tf.randomNormal([dim, dim], 0, 0.2, 'float32', seed + i + 1), true, `${name}/W${i}`),
      );
    variables.set(
      'H',
      tf.variable(tf.randomNormal([dim, vocab], 0, 0.2, 'float32', seed + 99), true, `${name}/H`),
    );
  });
  const stages: Stage[] = [{ name: 'embed', params: ['E'], forward: (t, p) => tf.gather(p.E!, t) }]; // [B, T, D]
  for (let i = 0; i < depth; i++) {
    stages.push({
      name: `block${i}`,
      params: [`W${i}`],
      forward: (x, p) => {
        const [B, T, D] = x.shape as [number, number, number];
        const h = tf.relu(tf.matMul(tf.reshape(x, [B * T, D]), p[`W${i}`]!)); // [B·T, D]
        return tf.add(x, tf.reshape(h, [B, T, D]));
      },
    });
  }
  stages.push({
    name: 'head',
    params: ['H'],
    forward: (x, p, batch) => {
      const [B, T, D] = x.shape as [number, number, number];
      const y = tf.matMul(tf.reshape(x, [B * T, D]), p.H!); // [B·T, V]
      return tf.mean(tf.square(tf.sub(y, tf.oneHot(tf.reshape(batch.targets, [B * T]), vocab))));
    },
  });
  return {
    stages,
    variables,
    paramInfo: (n) => ({ name: n, shape: variables.get(n)!.shape, role: n === 'E' ? 'embedding' : 'matrix' }),
  };
}

export function batchOf(vocab: number, B: number, T: number, seed: number) {
  return tf.tidy(() => ({
    inputs: tf.randomUniform([B, T], 0, vocab, 'int32', seed),
    targets: tf.randomUniform([B, T], 0, vocab, 'int32', seed + 1),
  }));
}

/**
 * SGD with momentum, its state a float32 velocity and an int32 update count (both variables, written in place by
 * `assign`): a stateful optimizer of the test's own (plugins do not depend on each other's packages).
 */
export function momentum(lr: number, beta: number): OptimizerPlugin {
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'optimizer',
    name: 'momentum',
    describe: () => ({ lr, beta }),
    init: (p) => ({
      m: stateVariable(`${p.name}/m`, p.shape),
      count: stateVariable(`${p.name}/count`, [1], { dtype: 'int32' }),
    }),
    stateBytes: (shape) => 4 * shape.reduce((a, b) => a * b, 1) + 4,
    update(param, grad, state) {
      const m = state.m as tf.Variable;
      const count = state.count as tf.Variable;
      tf.tidy(() => {
        m.assign(tf.add(tf.mul(m, beta), grad));
        // The count scales nothing but must travel exactly: the step uses 1 + 0·count.
        const scale = tf.add(1, tf.mul(tf.cast(count, 'float32'), 0));
        param.assign(tf.sub(param, tf.mul(tf.mul(m, lr), scale)));
        count.assign(tf.add(count, tf.scalar(1, 'int32')));
      });
    },
  };
}
