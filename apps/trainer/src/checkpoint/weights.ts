import { createGPT, type GPTConfig, type GPTModel } from '@kstar/gpt';
import { split24 } from '@kstar/master-split24';
import type { LoadedCheckpoint } from './read.ts';
import { wholeModelFile } from './reshard.ts';
import { restoreWeightsFile } from './state.ts';

/**
 * A float32 model holding a checkpoint's weights (split24 weights reconstructed to their full 24 bits; a ZeRO-3
 * checkpoint's shards joined, when read with EVERY_RANK), for export and sampling. The caller disposes it.
 */
export async function modelFromCheckpoint(checkpoint: LoadedCheckpoint): Promise<GPTModel> {
  const config: GPTConfig = checkpoint.trainer.model;
  const model = createGPT(config);
  try {
    // A ZeRO-3 checkpoint has no whole model file: every rank's shards, read with EVERY_RANK, are joined.
    const { file, origin } = wholeModelFile(checkpoint);
    if (file.metadata.format !== 'split24') {
      restoreWeightsFile(file, origin, model);
      return model;
    }
    const split = split24();
    try {
      restoreWeightsFile(file, origin, model, split);
      for (const name of split.names()) {
        const full = split.reconstruct(name);
        model.variables.get(name)!.assign(full);
        full.dispose();
      }
    } finally {
      split.dispose();
    }
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The model's weights as float32 arrays by K* name. */
export async function float32Weights(model: GPTModel): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of model.variables) out.set(name, Float32Array.from((await v.data()) as Float32Array));
  return out;
}
