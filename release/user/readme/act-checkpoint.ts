// README: packages/act-checkpoint/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { engineSetup } from '../example-setup.ts';

const { model, optimizer } = engineSetup();
// #region readme
import { checkpoint } from '@kstar/act-checkpoint';
import { TrainingEngine } from '@kstar/core';
new TrainingEngine(model, { optimizer, mode: 'segmented', activations: [checkpoint({ plan: 'sqrt' })] });
new TrainingEngine(model, { optimizer, mode: 'full', activations: [checkpoint({ plan: 'selective' })] });
// #endregion
