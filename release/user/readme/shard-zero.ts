// README: packages/shard-zero/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { engineSetup, tokenBatch } from '../example-setup.ts';

const { model, optimizer } = engineSetup();
const myRowsOfTheGlobalBatch = tokenBatch();
// #region readme
import { TrainingEngine } from '@kstar/core';
import { openCollective } from '@kstar/collective-mpi';
import { zero } from '@kstar/shard-zero';

const collective = await openCollective();                   // mpirun -np N node train.js
const engine = new TrainingEngine(model, { optimizer, mode: 'segmented', sharding: zero({ stage: 3, collective }) });
await engine.trainStep(myRowsOfTheGlobalBatch);               // loss: the mean over ranks
// #endregion
await collective.close();
