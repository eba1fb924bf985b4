// README: packages/optim-adamw/README.md (block 2). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { minimizeSetup } from '../example-setup.ts';

const { w, b, loss } = minimizeSetup();
// #region readme
import * as tf from '@tensorflow/tfjs';
import { AdamW } from '@kstar/optim-adamw';

const opt = new AdamW({ lr: 1e-3, weightDecay: 0.01 });   // an options object, not positional arguments
opt.minimize(() => loss(), false, [w, b]);
// or: const { value, grads } = opt.computeGradients(f); opt.applyGradients(grads); tf.dispose([value, grads]);
// #endregion
