import { type Batch, type StagedModel, TrainingEngine } from '@kstar/core';
import { sgdPlugin } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { accumulatedGradBytes, GradAccumulation } from '../src/index.ts';

const V = 7;
const D = 3;

/** One stage: y = E[token] · v, loss = mean((y − target)²) over [B, T]. Two parameters, seeded. */
function linearModel(): StagedModel {
  const variables = new Map([
    ['E', tf.variable(tf.randomNormal([V, D], 0, 0.5, 'float32', 1))],
    ['v', tf.variable(tf.randomNormal([D], 0, 0.5, 'float32', 2))],
  ]);
  const loss = (tokens: tf.Tensor, p: Readonly<Record<string, tf.Tensor>>, batch: Batch) => {
    const y = tf.sum(tf.mul(tf.gather(p.E!, tokens), p.v!), -1); // [B, T]
    return tf.mean(tf.square(tf.sub(y, tf.cast(batch.targets, 'float32'))));
  };
  return {
    stages: [{ name: 'linear', params: ['E', 'v'], forward: loss }],
    variables,
    paramInfo: (name) => ({ name, shape: variables.get(name)!.shape, role: 'other' }),
  };
}

/** 4 rows of 5 tokens, and the same rows as two micro-batches of 2. */
function batches(): { whole: Batch; micro: Batch[] } {
  const inputs = tf.randomUniform([4, 5], 0, V, 'int32', 3);
  const targets = tf.randomUniform([4, 5], -2, 3, 'int32', 4);
  const rows = (from: number) => ({ inputs: tf.slice(inputs, from, 2), targets: tf.slice(targets, from, 2) });
  return { whole: { inputs, targets }, micro: [rows(0), rows(2)] };
}

const values = (m: StagedModel) => [...m.variables.values()].flatMap((v) => Array.from(v.dataSync()));
const dispose = (m: StagedModel, b: ReturnType<typeof batches>) =>
  tf.dispose([...m.variables.values(), ...[b.whole, ...b.micro].flatMap((x) => [x.inputs, x.targets])]);

it('2 micro-batches of 2 rows make the update and the loss of one step on the 4 rows; nothing is left over', async () => {
  const b = batches();
  const reference = linearModel();
  const big = await new TrainingEngine(reference, { optimizer: sgdPlugin(0.1) }).trainStep(b.whole);
  const model = linearModel();
  const before = tf.memory().numTensors;
  const accumulation = new GradAccumulation(2);
  const engine = new TrainingEngine(model, {
    optimizer: accumulation.wrap(sgdPlugin(0.1)),
    onGradient: accumulation.onGradient,
  });
  const r = await accumulation.step(engine, b.micro, (last) => engine.trainStep(last));
  expect(r.loss).toBeCloseTo(big.loss, 5);
  const [got, want] = [values(model), values(reference)];
  for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 6);
  expect(tf.memory().numTensors).toBe(before); // the sums are freed after the step
  expect(accumulatedGradBytes(2, V * D + D)).toBe(4 * (V * D + D));
  dispose(model, b);
  tf.dispose([...reference.variables.values()]);
});

it('with maxNorm: the update is min(1, X/(‖Σg/K‖ + 1e-6)) · Σg/K, as tf.grads on the 4 rows gives it', async () => {
  const b = batches();
  const reference = linearModel();
  const p = Object.fromEntries(reference.variables);
  // The independent reference: tfjs's own gradients of the mean loss over the 4 rows, clipped by hand.
  const { grads } = tf.variableGrads(
    () => reference.stages[0]!.forward(b.whole.inputs, p, b.whole) as tf.Scalar,
    [...reference.variables.values()],
  );
  const norm = Math.sqrt(
    tf.tidy(() => tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))).dataSync()[0]!),
  );
  const maxNorm = norm / 4; // the clip binds
  const scale = Math.min(1, maxNorm / (norm + 1e-6));
  for (const v of reference.variables.values())
    tf.tidy(() => v.assign(tf.sub(v, tf.mul(grads[v.name]!, 0.1 * scale))));
  tf.dispose(Object.values(grads));

  const model = linearModel();
  const accumulation = new GradAccumulation(2, { maxNorm });
  const engine = new TrainingEngine(model, {
    optimizer: accumulation.wrap(sgdPlugin(0.1)),
    onGradient: accumulation.onGradient,
  });
  const r = await accumulation.step(engine, b.micro, (last) => engine.trainStep(last));
  expect(r.gradNorm! / norm).toBeCloseTo(1, 5);
  const [got, want] = [values(model), values(reference)];
  for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 6);
  dispose(model, b);
  tf.dispose([...reference.variables.values()]);
});

it('refuses a micro-batch count that is not a positive integer', () => {
  expect(() => new GradAccumulation(0)).toThrow(/at least 1 \(got 0\)/);
  expect(() => new GradAccumulation(1.5)).toThrow(/got 1.5/);
});
