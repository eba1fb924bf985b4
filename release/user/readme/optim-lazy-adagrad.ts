// README: packages/optim-lazy-adagrad/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { engineSetup, layersSetup, tokenBatch } from '../example-setup.ts';

const { model } = engineSetup();
const batch = tokenBatch();
const { model: layersModel } = layersSetup();
// #region readme
import { TrainingEngine } from '@kstar/core';
import { lazyAdagrad, lazyAdagradFromReferenceHparams, LazyAdagrad } from '@kstar/optim-lazy-adagrad';

const opt = lazyAdagrad({ lr: 0.1 });                       // row-lazy embeddings, window off: exactly Adagrad
const win = lazyAdagrad({ lr: 0.1, window: 2 });             // 2 groups float32, the rest 8-bit
const ref = lazyAdagradFromReferenceHparams({ lr: 0.1, eps: 1e-10, initial_accumulator_value: 0 });
const engine = new TrainingEngine(model, { optimizer: win, mode: 'segmented' });
await engine.trainStep(batch);
win.rowsTouched(engine.stateOf('wte')!);                     // rows allocated so far (measured)
opt.stateBytesFor([50257, 768], 5026, { role: 'embedding' }); // exact bytes for that many rows

layersModel.compile({ optimizer: new LazyAdagrad({ lr: 0.1 }), loss: 'categoricalCrossentropy' }); // drop-in, tfjs-layers
// #endregion
