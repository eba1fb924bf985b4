// README: packages/gpt/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { tokenBatch } from '../example-setup.ts';

const { inputs, targets } = tokenBatch();
// #region readme
import * as tf from '@tensorflow/tfjs';
import { createGPT, resolveConfig } from '@kstar/gpt';

const model = createGPT(resolveConfig('tiny', { vocabSize: 256 }), { seed: 1 });
const loss = model.loss({ inputs, targets }); // int32 [B, T] each → scalar mean cross-entropy
const logits = model.forwardLogits(inputs); // [B, T, V]
// #endregion
