import { Rng } from '@kstar/data';
import { type GPTModel, generate as generateTokens } from '@kstar/gpt';
import type * as tf from '@tensorflow/tfjs';

export interface SampleOptions {
  /** Tokens to generate. */
  tokens: number;
  /** 0: greedy (argmax); otherwise logits are divided by it before the softmax. */
  temperature: number;
  /** Sample among the K most likely tokens only (0 or absent: all). */
  topK?: number;
  seed: number;
}

/** `@kstar/gpt`'s `generate` with the run's seeded `Rng` (`options.seed`). */
export async function generate(
  model: GPTModel,
  prompt: readonly number[],
  options: SampleOptions,
  onToken: (id: number) => void,
  params?: Record<string, tf.Tensor>,
): Promise<number[]> {
  const rng = new Rng(options.seed);
  return generateTokens(model, prompt, { ...options, random: () => rng.nextFloat() }, onToken, params);
}
