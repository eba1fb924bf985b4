// README: packages/optim-lion/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { parameterSetup } from '../example-setup.ts';

const { param, grad, step } = parameterSetup();
// #region readme
import { lion, lionFromReferenceHparams } from '@kstar/optim-lion';

const opt = lion({ lr: 3e-4, weightDecay: 0.1 });
const state = opt.init({ name: 'h0/attn/W', shape: [768, 2304], role: 'matrix' }); // { m }: tf.Variable
opt.update(param, grad, state, step);   // step counts from 1; grad is not disposed
opt.learningRate = 1e-4;                // schedules set it between steps
opt.stateBytes([768, 2304]);            // 7,077,888
opt.hparams;                            // { lr, beta1, beta2, weightDecay, decoupledWeightDecay }
opt.initialLearningRate;                // lr₀ (for decoupledWeightDecay)

// lion_pytorch names, as golden files and `kstar replay` carry them:
lionFromReferenceHparams({ lr: 0.001, beta1: 0.9, beta2: 0.99, weight_decay: 0.1 });
lionFromReferenceHparams({ lr: 1e-4, betas: [0.95, 0.98], weight_decay: 1, decoupled_weight_decay: true });
// #endregion
if (opt.stateBytes([768, 2304]) !== 7077888) throw new Error(`stateBytes: ${opt.stateBytes([768, 2304])}, the README says 7077888`);
