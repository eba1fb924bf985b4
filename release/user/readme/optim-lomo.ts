// README: packages/optim-lomo/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { stagedParts, tokenBatch } from '../example-setup.ts';

const { stages, variables, paramInfo } = stagedParts();
const batches = [tokenBatch(1), tokenBatch(2)];
// #region readme
import { TrainingEngine, type StagedModel } from '@kstar/core';
import { inPlaceGradAccumulator } from '@kstar/kernels';
import { adalomo, lomo, lomoStep } from '@kstar/optim-lomo';

const model: StagedModel = { stages, variables, paramInfo }; // your tf.Variables, split into stages
const engine = new TrainingEngine(model, {
  optimizer: lomo({ lr: 1e-3 }),           // or adalomo({ lr: 1e-3 })
  mode: 'segmented',                       // gradient release is on by default
  gradAccumulator: inPlaceGradAccumulator, // tied weights: sum partial gradients in place
});
for (const batch of batches) {
  const r = await engine.trainStep(batch); // with clipGradNorm: await lomoStep(engine, batch)
  console.log(r.loss, r.optimizerStateBytes, r.gradPeakBytes);
}
// #endregion
