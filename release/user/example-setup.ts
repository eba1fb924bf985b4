// What the README examples (readme/*.ts) take as given and do not show: a model, a batch, a parameter and its
// gradient, a tfjs-layers model with data and an in-memory save handler. Kept tiny so that every example runs in
// the packed-install test in well under a second or two.
import type { OptimizerPlugin, StagedModel } from '@kstar/core';
import { createGPT, type GPTModel, resolveConfig } from '@kstar/gpt';
import { adamw } from '@kstar/optim-adamw';
import * as tf from '@tensorflow/tfjs';

/** A one-block GPT (d 32, context 16, byte vocabulary): small enough for one step in a fraction of a second. */
const SMALL = resolveConfig('tiny', { nLayer: 1, nHead: 2, nEmbd: 32, blockSize: 16 });

/** A small GPT and a plugin optimizer, for the TrainingEngine examples. */
export function engineSetup(): { model: GPTModel; optimizer: OptimizerPlugin } {
  return { model: createGPT(SMALL, { seed: 1 }), optimizer: adamw({ lr: 1e-3 }) };
}

/** A batch of 2 byte-level token windows of 16: int32 [2, 16] inputs and targets. */
export function tokenBatch(seed = 1): { inputs: tf.Tensor2D; targets: tf.Tensor2D } {
  const ids = tf.randomUniform([2, 17], 0, 256, 'int32', seed) as tf.Tensor2D; // [B, T + 1]
  const inputs = tf.slice(ids, [0, 0], [2, 16]);
  const targets = tf.slice(ids, [0, 1], [2, 16]);
  ids.dispose();
  return { inputs, targets };
}

/** A parameter (by default GPT-2 small's attention projection [768, 2304]), its gradient and the step (from 1). */
export function parameterSetup(name = 'h0/attn/W', shape: [number, number] = [768, 2304]) {
  // Deterministic values without the per-element cost of a seeded random draw (1.7M elements).
  const n = shape[0] * shape[1];
  const wave = (scale: number, phase: number) =>
    tf.tidy(() => tf.reshape(tf.mul(tf.sin(tf.add(tf.range(0, n), phase)), scale), shape));
  const param = tf.variable(wave(0.02, 0), true, name);
  const grad = wave(1e-3, 0.5);
  return { param, grad, step: 1 };
}

/** Four rows of two features and their targets, the data of the minimize and layers examples: x [4, 2], y [4, 1]. */
function fourRows() {
  const x = tf.tensor2d([
    [1, 2],
    [3, 4],
    [5, 6],
    [7, 8],
  ]);
  return { x, y: tf.tensor2d([[1], [2], [3], [4]]) };
}

/** Two parameters w [2, 1], b [1] and a least-squares loss: the plain-tfjs `minimize` examples. */
export function minimizeSetup() {
  const w = tf.variable(tf.tensor2d([[0.1], [-0.2]]), true, 'w');
  const b = tf.variable(tf.zeros([1]), true, 'b');
  const { x: xs, y: ys } = fourRows();
  const loss = () => tf.tidy(() => tf.losses.meanSquaredError(ys, tf.add(tf.matMul(xs, w), b)) as tf.Scalar);
  return { w, b, loss };
}

/** A one-layer tfjs-layers model, its data and a handler that saves to memory and loads back from it. */
export function layersSetup() {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
  const { x, y } = fourRows();
  let saved: tf.io.ModelArtifacts | undefined;
  const handler: tf.io.IOHandler = {
    save: async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
    load: async () => {
      if (!saved) throw new Error('nothing saved yet');
      return saved;
    },
  };
  return { model, x, y, handler, handlerOrUrl: handler };
}

/** A user's staged model: the parts of the tiny GPT that the engine needs. */
export function stagedParts(): Pick<StagedModel, 'stages' | 'variables' | 'paramInfo'> {
  const gpt = createGPT(SMALL, { seed: 1 });
  return { stages: gpt.stages, variables: gpt.variables, paramInfo: (name) => gpt.paramInfo(name) };
}

/** Fails unless `optimizer` (a loaded model's) comes back as `className`: the save kept the optimizer's class. */
export function expectOptimizerClass(optimizer: tf.Optimizer, className: string): void {
  const got = optimizer.getClassName();
  if (got !== className) throw new Error(`the loaded optimizer is a ${got}, not a ${className}`);
}
