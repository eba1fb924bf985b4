// README: packages/data/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
// #region readme
import * as tf from '@tensorflow/tfjs';
import { createTokenizer, loadCorpus, TokenDataset } from '@kstar/data';

const corpus = loadCorpus({ kind: 'brown' }); // or { kind: 'path', path: './my-texts' }
const tokenizer = createTokenizer('byte'); // or 'gpt2'
const data = TokenDataset.fromCorpus(corpus, tokenizer, { seed: 42 });

const batch = data.trainBatch(8, 128); // int32 [8, 128] inputs and targets
// ... train on batch ...
tf.dispose([batch.inputs, batch.targets]);

const val = data.valBatches(8, 128, 4); // the same 32 windows every time
// ... evaluate ...
for (const b of val) tf.dispose([b.inputs, b.targets]);

// Non-tf consumers: flat Int32Array windows of T + 1 tokens, row-major.
const { data: windows } = data.sampleTrainWindows(8, 128); // length 8 * 129
// #endregion
