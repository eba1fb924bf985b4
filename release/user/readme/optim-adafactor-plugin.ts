// README: packages/optim-adafactor/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { parameterSetup } from '../example-setup.ts';

const { param, grad, step } = parameterSetup();
// #region readme
import { adafactor, adafactorFromReferenceHparams } from '@kstar/optim-adafactor';

const opt = adafactor();                                                  // HF defaults: relative step + scale
const ext = adafactor({ relativeStep: false, scaleParameter: false, lr: 3e-3 }); // alpha = lr exactly
const state = ext.init({ name: 'h0/attn/wqkv', shape: [768, 2304], role: 'matrix' });
// { exp_avg_sq_row: [768], exp_avg_sq_col: [2304] }  (+ exp_avg with beta1; exp_avg_sq for vectors)
ext.update(param, grad, state, step);   // step counts from 1 (HF's per-parameter state["step"]); grad not disposed
ext.learningRate = 1e-3;                // schedules: only without relativeStep
ext.stateBytes([768, 2304]);            // 12,288

adafactorFromReferenceHparams({ lr: null, relative_step: true, scale_parameter: true, warmup_init: false,
  beta1: null, clip_threshold: 1.0, decay_rate: -0.8, eps: [1e-30, 1e-3], weight_decay: 0.0 }); // or eps1/eps2
// #endregion
if (ext.stateBytes([768, 2304]) !== 12288) throw new Error(`stateBytes: ${ext.stateBytes([768, 2304])}, the README says 12,288`);
