// README: packages/optim-came/README.md (block 3). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { expectOptimizerClass, layersSetup } from '../example-setup.ts';

const { model, x, y, handler, handlerOrUrl } = layersSetup();
// #region readme
import * as tf from '@tensorflow/tfjs';
import { CAME } from '@kstar/optim-came';

model.compile({ optimizer: new CAME({ lr: 5e-3 }), loss: 'meanSquaredError' });
await model.fit(x, y, { epochs: 10 });
await model.save(handler, { includeOptimizer: true }); // optimizer_config.class_name 'CAME' + named state
const loaded = await tf.loadLayersModel(handlerOrUrl); // loaded.optimizer is a CAME with the saved state
// #endregion
expectOptimizerClass(loaded.optimizer, 'CAME');
