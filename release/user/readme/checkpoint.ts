// README: packages/checkpoint/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against
// the published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
// The test runs it in a fresh project directory with no @types/node: a relative directory, no node: imports.
const saveDir = 'kstar-readme-runs';
// #region readme
import {
  decodePayload,
  encodePayload,
  MODEL_FILE,
  readCheckpoint,
  snapshotTensors,
  TRAINER_STATE,
  writeCheckpoint,
} from '@kstar/checkpoint';
import * as tf from '@tensorflow/tfjs';

const weights = { w: tf.variable(tf.randomNormal([4, 3], 0, 1, 'float32', 1)), b: tf.variable(tf.zeros([3])) };
// Copy to host memory (every read at once), then encode and write step-00000010/ atomically (fsync + rename).
const snapshot = await snapshotTensors(Object.entries(weights), { format: 'float32' });
const dir = writeCheckpoint(
  saveDir,
  10,
  [
    { path: MODEL_FILE, data: encodePayload(snapshot.entries, snapshot.metadata) },
    { path: TRAINER_STATE, data: new TextEncoder().encode(JSON.stringify({ step: 10 })) },
  ],
  { keep: 3, kstarVersion: 'my-app 1.0' },
);
// Read it back: the manifest's and every file's SHA-256 are checked first.
const loaded = readCheckpoint<{ step: number }>(dir);
const w = decodePayload(loaded.files.get(MODEL_FILE)!, MODEL_FILE).tensors.get('w')!;
weights.w.assign(tf.tensor(new Float32Array(w.data.slice().buffer), [...w.shape]));
console.log(loaded.trainer.step, w.shape); // 10 [ 4, 3 ]
// #endregion
if (loaded.trainer.step !== 10 || w.shape.join() !== '4,3') throw new Error('checkpoint example: wrong round trip');
