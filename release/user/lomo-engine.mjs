// A user's script: train a two-stage model from plain tfjs code with LOMO through the K* engine (segmented mode,
// gradient release), and compare every step with plain SGD computed by tf.grads over the same function.

import { TrainingEngine } from '@kstar/core';
import { inPlaceGradAccumulator } from '@kstar/kernels';
import { lomo } from '@kstar/optim-lomo';
import * as tf from '@tensorflow/tfjs';

const V = 11; // vocabulary
const D = 6; // width
const LR = 0.5;
const STEPS = 4;
const init = {
  wte: tf.tensor2d(
    Array.from({ length: V * D }, (_, i) => Math.sin(i * 0.7) * 0.3),
    [V, D],
  ),
  head: tf.tensor2d(
    Array.from({ length: D * V }, (_, i) => Math.cos(i * 0.3) * 0.3),
    [D, V],
  ),
};
const inputs = tf.tensor2d(
  [
    [1, 2, 3, 4],
    [5, 6, 7, 8],
  ],
  [2, 4],
  'int32',
); // [B, T]
const targets = tf.tensor2d(
  [
    [2, 3, 4, 5],
    [6, 7, 8, 9],
  ],
  [2, 4],
  'int32',
); // [B, T]
const batch = { inputs, targets };

const embed = (ids, wte) => tf.gather(wte, ids); // [B, T, D]
function headLoss(h, head) {
  const logits = tf.reshape(tf.matMul(tf.reshape(h, [-1, D]), head), [-1, V]); // [B·T, V]
  return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(targets, [-1]), V), logits);
}

// The K* engine: two stages, LOMO updates each parameter as soon as its gradient exists.
const variables = new Map(
  Object.entries(init).map(([name, t]) => [name, tf.variable(t.clone(), true, name)]),
);
const model = {
  stages: [
    { name: 'embed', params: ['wte'], forward: (x, p) => embed(x, p.wte) },
    { name: 'head', params: ['head'], forward: (x, p) => headLoss(x, p.head) },
  ],
  variables,
  paramInfo: (name) => ({
    name,
    shape: variables.get(name).shape,
    role: name === 'wte' ? 'embedding' : 'matrix',
  }),
};
const engine = new TrainingEngine(model, {
  optimizer: lomo({ lr: LR }),
  mode: 'segmented',
  gradAccumulator: inPlaceGradAccumulator,
});

// The reference: plain SGD with tf.grads over the whole function.
let ref = { ...init };
const lossOf = (wte, head) => headLoss(embed(inputs, wte), head);
const losses = [];
const refLosses = [];
let maxDiff = 0;
for (let step = 0; step < STEPS; step++) {
  const r = await engine.trainStep(batch);
  losses.push(r.loss);
  const [gWte, gHead] = tf.grads(lossOf)([ref.wte, ref.head]);
  refLosses.push(lossOf(ref.wte, ref.head).dataSync()[0]);
  ref = { wte: tf.sub(ref.wte, tf.mul(LR, gWte)), head: tf.sub(ref.head, tf.mul(LR, gHead)) };
  for (const name of ['wte', 'head']) {
    const diff = tf.max(tf.abs(tf.sub(variables.get(name), ref[name]))).dataSync()[0];
    maxDiff = Math.max(maxDiff, diff);
  }
}
console.log(JSON.stringify({ losses, refLosses, maxDiff }));
