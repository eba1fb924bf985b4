// README: packages/optim-adamw/README.md (block 3). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { expectOptimizerClass, layersSetup } from '../example-setup.ts';

const { model, x, y, handler, handlerOrUrl } = layersSetup();
// #region readme
import * as tf from '@tensorflow/tfjs';
import { AdamW } from '@kstar/optim-adamw';

model.compile({ optimizer: new AdamW({ lr: 1e-3 }), loss: 'meanSquaredError' });
await model.fit(x, y, { epochs: 10 });
await model.save(handler, { includeOptimizer: true }); // optimizer_config.class_name 'AdamW' + named state
const loaded = await tf.loadLayersModel(handlerOrUrl); // loaded.optimizer is an AdamW with the saved state
// #endregion
expectOptimizerClass(loaded.optimizer, 'AdamW');
