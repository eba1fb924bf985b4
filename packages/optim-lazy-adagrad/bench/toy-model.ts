import type { ParamInfo, Stage, StagedModel } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';

/**
 * A toy staged model named like the K* GPT, so the default group key (prefix before the first '.') gives one group
 * per stage: `wte` (embedding [V, D], rows gathered by token: sparse gradients), `h{i}.w` [D, D] + `h{i}.b` [D]
 * (tanh blocks with residuals), `head.w` [D, V] (an UNTIED head, so `wte`'s gradient stays row-sparse), mean
 * cross-entropy. One stage a segment in segmented mode.
 */
let instances = 0;

export function toyStagedModel(opts: {
  vocab: number;
  dim: number;
  depth: number;
  seed: number;
}): StagedModel {
  const { vocab, dim, depth, seed } = opts;
  const id = `lazy-toy${++instances}`;
  const variables = new Map<string, tf.Variable>();
  tf.tidy(() => {
    variables.set(
      'wte',
      tf.variable(tf.randomNormal([vocab, dim], 0, 0.5, 'float32', seed), true, `${id}/wte`),
    );
    for (let i = 0; i < depth; i++) {
      variables.set(
        `h${i}.w`,
        tf.variable(tf.randomNormal([dim, dim], 0, 0.3, 'float32', seed + 1 + i), true, `${id}/h${i}.w`),
      );
      variables.set(`h${i}.b`, tf.variable(tf.zeros([dim]), true, `${id}/h${i}.b`));
    }
    variables.set(
      'head.w',
      tf.variable(tf.randomNormal([dim, vocab], 0, 0.3, 'float32', seed + 99), true, `${id}/head.w`),
    );
  });
  const stages: Stage[] = [
    { name: 'embed', params: ['wte'], forward: (tokens, p) => tf.gather(p.wte!, tokens) }, // [B, T, D]
  ];
  for (let i = 0; i < depth; i++) {
    stages.push({
      name: `h${i}`,
      params: [`h${i}.w`, `h${i}.b`],
      forward: (x, p) => {
        const [B, T, D] = x.shape as [number, number, number];
        const h = tf.tanh(tf.add(tf.matMul(tf.reshape(x, [B * T, D]), p[`h${i}.w`]!), p[`h${i}.b`]!)); // [B·T, D]
        return tf.add(x, tf.reshape(h, [B, T, D]));
      },
    });
  }
  stages.push({
    name: 'head',
    params: ['head.w'],
    forward: (x, p, batch) => {
      const [B, T, D] = x.shape as [number, number, number];
      const logits = tf.matMul(tf.reshape(x, [B * T, D]), p['head.w']!); // [B·T, V]
      const onehot = tf.oneHot(tf.reshape(batch.targets, [B * T]), vocab);
      return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1)));
    },
  });
  return {
    stages,
    variables,
    paramInfo: (name: string): ParamInfo => {
      const shape = variables.get(name)!.shape;
      return { name, shape, role: name === 'wte' ? 'embedding' : shape.length === 2 ? 'matrix' : 'vector' };
    },
  };
}

/** A batch of random tokens drawn from the first `activeVocab` ids (so only those rows of `wte` are touched). */
export function toyBatch(vocab: number, B: number, T: number, seed: number, activeVocab = vocab) {
  return tf.tidy(() => ({
    inputs: tf.randomUniform([B, T], 0, activeVocab, 'int32', seed),
    targets: tf.randomUniform([B, T], 0, vocab, 'int32', seed + 7),
  }));
}

export function disposeModel(model: StagedModel): void {
  for (const v of model.variables.values()) v.dispose();
}
