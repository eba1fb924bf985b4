// README: packages/optim-adamw/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { parameterSetup } from '../example-setup.ts';

const { param, grad, step } = parameterSetup();
// #region readme
import { adamw, adamwFromReferenceHparams } from '@kstar/optim-adamw';

const opt = adamw({ lr: 3e-4, beta2: 0.95, weightDecay: 0.1 });
const state = opt.init({ name: 'h0/attn/W', shape: [768, 2304], role: 'matrix' }); // { m, v }: tf.Variable
opt.update(param, grad, state, step);   // step counts from 1; grad is not disposed
opt.learningRate = 1e-4;                // schedules set it between steps
opt.stateBytes([768, 2304]);            // 14,155,776
opt.hparams;                            // { lr, beta1, beta2, eps, weightDecay }

// torch names, as golden files and `kstar replay` carry them:
adamwFromReferenceHparams({ lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 });
// #endregion
if (opt.stateBytes([768, 2304]) !== 14155776) throw new Error(`stateBytes: ${opt.stateBytes([768, 2304])}, the README says 14155776`);
