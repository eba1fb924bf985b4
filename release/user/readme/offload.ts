// README: packages/offload/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { engineSetup } from '../example-setup.ts';

const { model, optimizer } = engineSetup();
// #region readme
import { TrainingEngine } from '@kstar/core';
import { offload, offloadCodec } from '@kstar/offload';
new TrainingEngine(model, { optimizer, mode: 'segmented', activations: [offload()] });
// or per segment (a planner's choice): segmentCodecs: [undefined, offloadCodec, undefined, …]
// #endregion
