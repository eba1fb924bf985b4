// README: packages/train-loop/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { engineSetup, tokenBatch } from '../example-setup.ts';

const { model, optimizer } = engineSetup();
const batches = () => [tokenBatch(1), tokenBatch(2)];
// #region readme
import { TrainingEngine } from '@kstar/core';
import { GradAccumulation, learningRateAt, SpikeGuard } from '@kstar/train-loop';
import * as tf from '@tensorflow/tfjs';

const steps = 4;
const accumulation = new GradAccumulation(2); // 2 micro-batches per optimizer step, gradients averaged
const guard = new SpikeGuard(3); // skip the update of a loss over 3 × the recent median
const engine = new TrainingEngine(model, {
  optimizer: accumulation.wrap(optimizer),
  onGradient: accumulation.onGradient,
  skipUpdate: (loss, step) => guard.check(accumulation.meanLoss(loss), step),
});
for (let step = 1; step <= steps; step++) {
  optimizer.learningRate = learningRateAt(step, steps, 1e-3, 1); // warm-up 1 step, cosine to 1e-4
  const micro = batches(); // [B, T] inputs and targets, twice
  const r = await accumulation.step(engine, micro, (last) => engine.trainStep(last));
  console.log(step, r.loss); // the mean loss of the 2 micro-batches
  tf.dispose(micro.flatMap((b) => [b.inputs, b.targets]));
}
// #endregion
engine.dispose();
