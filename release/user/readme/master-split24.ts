// README: packages/master-split24/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { engineSetup, tokenBatch } from '../example-setup.ts';

const { model } = engineSetup();
// #region readme
import { TrainingEngine } from '@kstar/core';
import { split24 } from '@kstar/master-split24';
import { adam8bit } from '@kstar/optim-adam8bit';

const engine = new TrainingEngine(model, { optimizer: adam8bit({ lr: 3e-3 }), mode: 'segmented', masterWeights: split24() });
// #endregion
await engine.trainStep(tokenBatch());
