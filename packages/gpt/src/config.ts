import { InputError } from '@kstar/core';

/** Architecture of a decoder-only GPT (GPT-2 layout: pre-LayerNorm, tied LM head). */
export interface GPTConfig {
  /** Number of token ids (rows of the tied embedding / columns of the logits). */
  readonly vocabSize: number;
  /** Number of transformer blocks. */
  readonly nLayer: number;
  /** Attention heads per block; must divide `nEmbd`. */
  readonly nHead: number;
  /** Width of the residual stream (D). */
  readonly nEmbd: number;
  /** Context length: rows of the learned position embedding; the longest sequence the model accepts. */
  readonly blockSize: number;
}

export type GPTPresetName = 'tiny' | 'small' | 'gpt2-124m' | 'gpt2-medium' | 'gpt2-large' | 'gpt2-xl';

/**
 * Presets. `tiny` and `small` default to the byte-level vocabulary (256); the tokenizer's vocabulary should be
 * passed as an override when it differs. `gpt2-124m` is GPT-2 small with its BPE vocabulary.
 */
export const GPT_PRESETS: Readonly<Record<GPTPresetName, GPTConfig>> = {
  // ≈0.45M params; one step of B=8, T=128 is ≈2.7 GFLOP (6·N·tokens + attention), a few per second on wasm.
  tiny: { vocabSize: 256, nLayer: 2, nHead: 4, nEmbd: 128, blockSize: 128 },
  // ≈10.8M params.
  small: { vocabSize: 256, nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256 },
  // 124,439,808 params (tied head).
  'gpt2-124m': { vocabSize: 50257, nLayer: 12, nHead: 12, nEmbd: 768, blockSize: 1024 },
  // 354,823,168 params (HF gpt2-medium).
  'gpt2-medium': { vocabSize: 50257, nLayer: 24, nHead: 16, nEmbd: 1024, blockSize: 1024 },
  // 774,030,080 params (HF gpt2-large).
  'gpt2-large': { vocabSize: 50257, nLayer: 36, nHead: 20, nEmbd: 1280, blockSize: 1024 },
  // 1,557,611,200 params (HF gpt2-xl).
  'gpt2-xl': { vocabSize: 50257, nLayer: 48, nHead: 25, nEmbd: 1600, blockSize: 1024 },
};

const FIELDS = ['vocabSize', 'nLayer', 'nHead', 'nEmbd', 'blockSize'] as const;

/**
 * A preset (by name or as a config) with overrides applied, validated. Throws `InputError` naming the offending
 * value and what to do.
 */
export function resolveConfig(
  preset: GPTPresetName | GPTConfig = 'tiny',
  overrides: Partial<GPTConfig> = {},
): GPTConfig {
  let base: GPTConfig;
  if (typeof preset === 'string') {
    const found = (GPT_PRESETS as Record<string, GPTConfig | undefined>)[preset];
    if (!found) {
      throw new InputError(
        `unknown GPT preset '${preset}': use one of ${Object.keys(GPT_PRESETS).join(', ')}`,
        'E_GPT_CONFIG',
      );
    }
    base = found;
  } else {
    base = preset;
  }
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const config: GPTConfig = { ...base, ...defined };
  validateConfig(config);
  return config;
}

/** Throws `InputError` unless every field is a positive integer and `nEmbd` is divisible by `nHead`. */
export function validateConfig(config: GPTConfig): void {
  for (const key of FIELDS) {
    const v = config[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new InputError(
        `GPT config ${key} = ${String(v)} is not a positive integer: set ${key} to a whole number ≥ 1`,
        'E_GPT_CONFIG',
      );
    }
  }
  if (config.vocabSize < 2) {
    throw new InputError(
      `GPT config vocabSize = ${config.vocabSize} is too small: the vocabulary needs at least 2 tokens`,
      'E_GPT_CONFIG',
    );
  }
  if (config.nEmbd % config.nHead !== 0) {
    throw new InputError(
      `GPT config nEmbd = ${config.nEmbd} is not divisible by nHead = ${config.nHead}: choose nHead dividing nEmbd (e.g. nHead ${largestDivisorAtMost(config.nEmbd, config.nHead)})`,
      'E_GPT_CONFIG',
    );
  }
}

function largestDivisorAtMost(n: number, k: number): number {
  for (let d = Math.min(n, k); d > 1; d--) if (n % d === 0) return d;
  return 1;
}
