// README: packages/act-compress/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { engineSetup } from '../example-setup.ts';

const { model, optimizer } = engineSetup();
// #region readme
import { checkpoint } from '@kstar/act-checkpoint';
import { compress } from '@kstar/act-compress';
import { TrainingEngine } from '@kstar/core';
new TrainingEngine(model, {
  optimizer,
  mode: 'segmented',
  activations: [checkpoint({ plan: 'every' }), compress({ format: 'int8', blockSize: 256 })],
});
// #endregion
