// README: packages/optim-lion/README.md (block 2). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { minimizeSetup } from '../example-setup.ts';

const { w, b, loss } = minimizeSetup();
// #region readme
import * as tf from '@tensorflow/tfjs';
import { Lion } from '@kstar/optim-lion';

const opt = new Lion({ lr: 3e-4, weightDecay: 0.1 });
opt.minimize(() => loss(), false, [w, b]);
// or: const { value, grads } = opt.computeGradients(f); opt.applyGradients(grads); tf.dispose([value, grads]);
// #endregion
