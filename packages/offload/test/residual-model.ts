import type { Stage, StagedModel } from '@kstar/core';
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
