import type { StagedModel } from '@kstar/core';
import { toyStagedModel as stagedModel } from '@kstar/testkit';
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
  const names = {
    embedding: 'wte',
    block: (i: number) => `h${i}`,
    weight: (i: number) => `h${i}.w`,
    bias: (i: number) => `h${i}.b`,
    head: 'head.w',
  };
  return stagedModel({ vocab, depth, variables, names, headLayout: 'DV' });
}

export { disposeModel, randomBatch as toyBatch } from '@kstar/testkit';
