// README: packages/act-mst/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { engineSetup, tokenBatch } from '../example-setup.ts';

const { model, optimizer } = engineSetup();
// #region readme
import { TrainingEngine } from '@kstar/core';
import { mst } from '@kstar/act-mst';

const engine = new TrainingEngine(model, {
  optimizer,
  mode: 'segmented', // or 'full': MsT needs no segments
  activations: [mst({ chunks: 8 })], // or mst(), mst({ mlpChunks, attentionChunk, lossChunks }), mst({ targetBytes })
});
// #endregion
await engine.trainStep(tokenBatch());
