import type { ParamInfo, Stage, StagedModel } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';

/** How a toy model names its parameters and stages (the engine's tests and the optimizers' use different names). */
export interface ToyNames {
  /** The embedding [V, D]: rows gathered by token; the only parameter whose role is 'embedding'. */
  embedding: string;
  /** Block i's stage name. */
  block(i: number): string;
  /** Block i's weight [D, D] and bias [D]. */
  weight(i: number): string;
  bias(i: number): string;
  /** The head: the embedding itself (tied), a [V, D] matrix or a [D, V] matrix (see `headLayout`). */
  head: string;
}

/** `E`, `W{i}`, `b{i}`, blocks `block{i}`, the head tied to `E`: the engine's toy model. */
export const TIED_TOY_NAMES: ToyNames = {
  embedding: 'E',
  block: (i) => `block${i}`,
  weight: (i) => `W${i}`,
  bias: (i) => `b${i}`,
  head: 'E',
};

/**
 * A tiny GPT-shaped staged model over variables the caller made: an embedding stage (gather), `depth` tanh blocks
 * with residuals, a head ([V, D] used transposed, or [D, V] used as is), mean cross-entropy.
 */
export function toyStagedModel(opts: {
  vocab: number;
  depth: number;
  variables: Map<string, tf.Variable>;
  names?: ToyNames;
  headLayout?: 'VD' | 'DV';
}): StagedModel {
  const { vocab, depth, variables, names = TIED_TOY_NAMES, headLayout = 'VD' } = opts;
  const stages: Stage[] = [
    {
      name: 'embed',
      params: [names.embedding],
      forward: (tokens, p) => tf.gather(p[names.embedding]!, tokens),
    }, // [B, T, D]
  ];
  for (let i = 0; i < depth; i++) {
    const [w, b] = [names.weight(i), names.bias(i)];
    stages.push({
      name: names.block(i),
      params: [w, b],
      forward: (x, p) => {
        const [B, T, D] = x.shape as [number, number, number];
        const h = tf.tanh(tf.add(tf.matMul(tf.reshape(x, [B * T, D]), p[w]!), p[b]!)); // [B·T, D]
        return tf.add(x, tf.reshape(h, [B, T, D]));
      },
    });
  }
  stages.push({
    name: 'head',
    params: [names.head],
    forward: (x, p, batch) => {
      const [B, T, D] = x.shape as [number, number, number];
      const logits = tf.matMul(tf.reshape(x, [B * T, D]), p[names.head]!, false, headLayout === 'VD'); // [B·T, V]
      const onehot = tf.oneHot(tf.reshape(batch.targets, [B * T]), vocab);
      return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1)));
    },
  });
  return {
    stages,
    variables,
    paramInfo: (name: string): ParamInfo => {
      const shape = variables.get(name)!.shape;
      return {
        name,
        shape,
        role: name === names.embedding ? 'embedding' : shape.length === 2 ? 'matrix' : 'vector',
      };
    },
  };
}

let instances = 0;

/**
 * The engine's toy model: `toyStagedModel` with tied weights (`E`, `W{i}`, `b{i}`), values from tfjs's seeded
 * normal initialiser (E scale 0.5, W 0.3, b 0.1).
 */
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
  return toyStagedModel({ vocab, depth, variables });
}

/**
 * Random token ids [B, T]: inputs from the first `activeVocab` ids (so only those embedding rows are touched),
 * targets from all `vocab`.
 */
export function randomBatch(vocab: number, B: number, T: number, seed: number, activeVocab = vocab) {
  return tf.tidy(() => ({
    inputs: tf.randomUniform([B, T], 0, activeVocab, 'int32', seed),
    targets: tf.randomUniform([B, T], 0, vocab, 'int32', seed + 7),
  }));
}

export function disposeModel(model: StagedModel): void {
  for (const v of model.variables.values()) v.dispose();
}
