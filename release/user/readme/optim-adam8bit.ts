// README: packages/optim-adam8bit/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { layersSetup, parameterSetup } from '../example-setup.ts';

const { param: w, grad, step } = parameterSetup('w', [64, 256]);
const { model } = layersSetup();
// #region readme
import { adam8bit, Adam8bit } from '@kstar/optim-adam8bit';
const opt = adam8bit({ lr: 3e-4, weightDecay: 0.1 });      // plugin for the K* TrainingEngine
const state = opt.init({ name: 'w', shape: [64, 256], role: 'matrix' });
opt.update(w, grad, state, step);                           // fused, in place
// plain tfjs / tfjs-layers
model.compile({ optimizer: new Adam8bit({ lr: 1e-3 }), loss: 'meanSquaredError' });
// #endregion
