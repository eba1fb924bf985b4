import type { TrainingEngine } from '@kstar/core';
import type { GPTModel } from '@kstar/gpt';
import type { Split24Plugin } from '@kstar/master-split24';
import { MODEL_FILE, optimizerFile, TRAINER_STATE, type TrainerState } from './format.ts';
import { encodeOptimizerState, encodeWeights } from './state.ts';
import { writeCheckpoint } from './write.ts';

/** What a checkpoint is made of: the engine (optimizer state), the model or split weights, the trainer's state. */
export interface CheckpointSource {
  engine: TrainingEngine;
  model: GPTModel;
  split?: Split24Plugin;
  trainer: TrainerState;
}

/** Encodes the training state in its stored forms and writes it as `saveDir/step-N/` (keeping the newest `keep`). */
export async function saveCheckpoint(saveDir: string, keep: number, src: CheckpointSource): Promise<string> {
  const files = [
    { path: MODEL_FILE, data: await encodeWeights(src.model, src.split) },
    { path: optimizerFile(0), data: await encodeOptimizerState(src.engine), rank: 0 },
    { path: TRAINER_STATE, data: new TextEncoder().encode(`${JSON.stringify(src.trainer, null, 1)}\n`) },
  ];
  return writeCheckpoint(saveDir, src.trainer.step, files, keep);
}
