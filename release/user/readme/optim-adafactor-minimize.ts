// README: packages/optim-adafactor/README.md (block 2). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { minimizeSetup } from '../example-setup.ts';

const { w, b, loss } = minimizeSetup();
// #region readme
import * as tf from '@tensorflow/tfjs';
import { Adafactor } from '@kstar/optim-adafactor';

const opt = new Adafactor({ relativeStep: false, scaleParameter: false, lr: 1e-2 });
opt.minimize(() => loss(), false, [w, b]);
// or: const { value, grads } = opt.computeGradients(f); opt.applyGradients(grads); tf.dispose([value, grads]);
// #endregion
