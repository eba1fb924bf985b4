import { MODEL_FILE } from '@kstar/checkpoint';
import { createGPT, type GPTConfig, type GPTModel } from '@kstar/gpt';
import { split24 } from '@kstar/master-split24';
import type { LoadedCheckpoint } from './read.ts';
import { assignModelShards } from './sharded.ts';
import { restoreWeights } from './state.ts';

/**
 * A float32 model holding a checkpoint's weights (split24 weights reconstructed to their full 24 bits; a ZeRO-3
 * checkpoint's shards joined, when read with EVERY_RANK), for export and sampling. The caller disposes it.
 */
export async function modelFromCheckpoint(checkpoint: LoadedCheckpoint): Promise<GPTModel> {
  const config: GPTConfig = checkpoint.trainer.model;
  const model = createGPT(config);
  if (!checkpoint.files.has(MODEL_FILE)) {
    // ZeRO-3: no file holds the whole model; every rank's shards, read with EVERY_RANK, are joined.
    try {
      await assignModelShards(checkpoint, model);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  }
  const origin = `${checkpoint.dir}/${MODEL_FILE}`;
  if (checkpoint.trainer.config.masterWeights !== 'split24') {
    restoreWeights(checkpoint.files.get(MODEL_FILE)!, origin, model);
    return model;
  }
  const split = split24();
  try {
    restoreWeights(checkpoint.files.get(MODEL_FILE)!, origin, model, split);
    for (const name of split.names()) {
      const full = split.reconstruct(name);
      model.variables.get(name)!.assign(full);
      full.dispose();
    }
  } finally {
    split.dispose();
  }
  return model;
}

/** The model's weights as float32 arrays by K* name. */
export async function float32Weights(model: GPTModel): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of model.variables) out.set(name, Float32Array.from((await v.data()) as Float32Array));
  return out;
}
