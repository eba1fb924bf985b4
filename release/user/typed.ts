// A user's TypeScript file, type-checked against the published declarations (no K* sources installed).
import { type StagedModel, TrainingEngine } from '@kstar/core';
import { Lion } from '@kstar/optim-lion';
import { lomo } from '@kstar/optim-lomo';
import * as tf from '@tensorflow/tfjs';

const optimizer: tf.Optimizer = new Lion({ lr: 1e-3, weightDecay: 0.1 });
const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
model.compile({ optimizer, loss: 'meanSquaredError' });

// @ts-expect-error: lr is a number (this line stops compiling if the declarations degrade to `any`)
new Lion({ lr: 'fast' });

export function engineFor(staged: StagedModel): TrainingEngine {
  return new TrainingEngine(staged, { optimizer: lomo({ lr: 1e-3 }), mode: 'segmented' });
}
