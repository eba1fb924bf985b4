// README: packages/optim-came/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { parameterSetup } from '../example-setup.ts';

const { param, grad, step } = parameterSetup();
// #region readme
import { came, cameFromReferenceHparams, CAME_TINY_LR } from '@kstar/optim-came';

const opt = came({ lr: 1e-4, beta3: 0.9999, weightDecay: 0.01 });
const state = opt.init({ name: 'h0/attn/wqkv', shape: [768, 2304], role: 'matrix' });
// { m, vRow, vCol, resRow, resCol }: non-trainable float32 tf.Variables named 'h0/attn/wqkv/<key>'
opt.update(param, grad, state, step);   // step counts from 1 (CAME has no bias correction); grad is not disposed
opt.learningRate = 1e-4;                // schedules set it between steps
opt.stateBytes([768, 2304]);            // 7,102,464
opt.hparams;                            // { lr, beta1, beta2, beta3, eps1, eps2, clipThreshold, weightDecay }

// came_pytorch names, flat (golden files, `kstar replay`) or as its constructor takes them:
cameFromReferenceHparams({ lr: 0.01, beta1: 0.9, beta2: 0.999, beta3: 0.9999, eps1: 1e-30, eps2: 1e-16,
  clip_threshold: 1.0, weight_decay: 0 });
cameFromReferenceHparams({ lr: 1e-4, betas: [0.9, 0.999, 0.9999], eps: [1e-30, 1e-16] });
// #endregion
if (opt.stateBytes([768, 2304]) !== 7102464) throw new Error(`stateBytes: ${opt.stateBytes([768, 2304])}, the README says 7102464`);
