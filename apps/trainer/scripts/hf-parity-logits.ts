// K*'s logits for the HF parity check: node --conditions=@kstar/source --import tsx apps/trainer/scripts/hf-parity-logits.ts
//   CHECKPOINT_DIR EXPORTED_DIR   → writes EXPORTED_DIR/kstar-logits.json ({tokens [1, T], logits [1, T, V]}).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { readCheckpoint } from '../src/checkpoint/read.ts';
import { modelFromCheckpoint } from '../src/checkpoint/weights.ts';

const [checkpointDir, outDir] = process.argv.slice(2);
if (!checkpointDir || !outDir) throw new Error('usage: hf-parity-logits.ts CHECKPOINT_DIR EXPORTED_DIR');
await selectBackend('cpu', { log: () => {} });
const model = await modelFromCheckpoint(readCheckpoint(checkpointDir));
const T = Math.min(24, model.config.blockSize);
const tokens = Array.from({ length: T }, (_, i) => (i * 37 + 11) % model.config.vocabSize);
const input = tf.tensor2d([tokens], [1, T], 'int32');
const logits = model.forwardLogits(input); // [1, T, V]
writeFileSync(
  join(outDir, 'kstar-logits.json'),
  JSON.stringify({ tokens: [tokens], logits: await logits.array() }),
);
tf.dispose([input, logits]);
model.dispose();
