// A user's script: train a tfjs-layers model with each K* drop-in optimizer, save it with its optimizer, and
// continue training from the saved model, in this process (`save`) and in a new one (`resume`). The reference is
// the same model trained without interruption; `tf.train.adam` runs through the same harness as a control.
// usage: node layers-continue.mjs save DIR   |   node layers-continue.mjs resume DIR
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Adafactor } from '@kstar/optim-adafactor';
import { Adam8bit } from '@kstar/optim-adam8bit';
import { AdamW } from '@kstar/optim-adamw';
import { CAME } from '@kstar/optim-came';
import { Lion } from '@kstar/optim-lion';
import * as tf from '@tensorflow/tfjs';

const OPTIMIZERS = {
  Lion: () => new Lion({ lr: 0.01, weightDecay: 0.01 }),
  AdamW: () => new AdamW({ lr: 0.01 }),
  Adam8bit: () => new Adam8bit({ lr: 0.01 }),
  Adafactor: () => new Adafactor({ lr: 0.01, relativeStep: false, scaleParameter: false }),
  CAME: () => new CAME({ lr: 0.01 }),
  'tf.train.adam': () => tf.train.adam(0.01),
};
const EPOCHS = 3;

// x: [64, 8], y: [64, 4], deterministic
const x = tf.tensor2d(
  Array.from({ length: 64 * 8 }, (_, i) => Math.sin(i * 0.37)),
  [64, 8],
);
const y = tf.tensor2d(
  Array.from({ length: 64 * 4 }, (_, i) => Math.cos(i * 0.11)),
  [64, 4],
);

function makeModel() {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        units: 16,
        inputShape: [8],
        activation: 'tanh',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
}

async function trainEpochs(model) {
  await model.fit(x, y, { epochs: EPOCHS, batchSize: 16, shuffle: false, verbose: 0 });
}

function weightsOf(model) {
  return model.getWeights().map((w) => Array.from(w.dataSync()));
}

function maxDiff(a, b) {
  let d = 0;
  for (const [i, w] of a.entries()) for (const [j, v] of w.entries()) d = Math.max(d, Math.abs(v - b[i][j]));
  return d;
}

/** Saves the model with its optimizer as JSON (weights base64), as a user's own IOHandler would. */
async function saveTo(model, file) {
  let saved;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      saved = { ...artifacts, weightData: Buffer.from(data).toString('base64') };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
    { includeOptimizer: true },
  );
  writeFileSync(file, JSON.stringify(saved));
}

async function loadFrom(file) {
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  const bytes = Buffer.from(saved.weightData, 'base64');
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ ...saved, weightData }));
}

const [phase, dir] = process.argv.slice(2);
const results = {};
for (const [name, make] of Object.entries(OPTIMIZERS)) {
  const file = join(dir, `${name}.model.json`);
  const referenceFile = join(dir, `${name}.reference.json`);
  try {
    if (phase === 'save') {
      mkdirSync(dir, { recursive: true });
      const model = makeModel();
      model.compile({ optimizer: make(), loss: 'meanSquaredError' });
      await trainEpochs(model);
      await saveTo(model, file);
      await trainEpochs(model); // the uninterrupted run
      const reference = weightsOf(model);
      writeFileSync(referenceFile, JSON.stringify(reference));
      const loaded = await loadFrom(file); // same process: tfjs-layers renames the loaded variables
      await trainEpochs(loaded);
      results[name] = { maxDiff: maxDiff(weightsOf(loaded), reference) };
      // What a silently restarted optimizer would give: the check above must be able to tell.
      const restarted = await loadFrom(file);
      restarted.compile({ optimizer: make(), loss: 'meanSquaredError' });
      await trainEpochs(restarted);
      results[name].restartedMaxDiff = maxDiff(weightsOf(restarted), reference);
    } else {
      const loaded = await loadFrom(file);
      await trainEpochs(loaded);
      const reference = JSON.parse(readFileSync(referenceFile, 'utf8'));
      results[name] = { maxDiff: maxDiff(weightsOf(loaded), reference) };
    }
  } catch (e) {
    results[name] = { error: String(e?.message ?? e).split('\n')[0] };
  }
}
console.log(JSON.stringify(results));
