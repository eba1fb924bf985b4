// README: packages/collective-mpi/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import * as tf from '@tensorflow/tfjs';

const grad = tf.ones([4]);
// #region readme
import { openCollective } from '@kstar/collective-mpi';
const c = await openCollective();          // under mpirun: Open MPI; otherwise one local rank (no MPI loaded)
const g = await c.allReduce(grad, 'mean'); // a new tensor; `grad` is kept
await c.close();                           // MPI_Finalize, after the last operation
// #endregion
if (c.size !== 1 || (await g.data())[0] !== 1) throw new Error(`one local rank expected, got ${c.size}`);
