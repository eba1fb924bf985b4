import type { Batch } from '@kstar/core';
import { InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import type { Corpus } from './corpus.ts';
import { Rng } from './rng.ts';
import type { Tokenizer } from './tokenizer.ts';

/** Share of the tokens held out for validation: the last 10% (see `splitIndex`). */
export const VAL_FRACTION = 0.1;

/**
 * Where the held-out split starts for `n` tokens: `floor(9n / 10)`. Training uses tokens `[0, splitIndex)`,
 * validation the last `n - splitIndex` tokens. The split depends only on `n`, never on a seed or on `T`.
 */
export function splitIndex(n: number): number {
  return Math.floor((n * 9) / 10);
}

export interface TokenDatasetOptions {
  /** Seed of the training sampler (default 0). Only its low 32 bits matter. */
  readonly seed?: number;
  /** Name shown in errors (the corpus name). */
  readonly name?: string;
  /** Vocabulary size; every token must be below it (checked once). */
  readonly vocabSize: number;
}

/** Flat windows of `T + 1` tokens, row-major: `windows.length === B * (T + 1)`. */
export interface Windows {
  readonly B: number;
  readonly T: number;
  readonly data: Int32Array;
}

/**
 * Tokens of one corpus with a fixed train/validation split and seeded window sampling.
 * A window is `T + 1` consecutive tokens from one split (never across the boundary);
 * `inputs = window[0..T)`, `targets = window[1..T+1)`.
 */
export class TokenDataset {
  readonly name: string;
  readonly vocabSize: number;
  /** All tokens. */
  readonly tokens: Int32Array;
  /** The first 90% (a view of `tokens`). */
  readonly train: Int32Array;
  /** The last 10% (a view of `tokens`). */
  readonly val: Int32Array;
  readonly seed: number;
  private readonly rng: Rng;

  constructor(tokens: Int32Array, options: TokenDatasetOptions) {
    const seed = options.seed ?? 0;
    if (!Number.isSafeInteger(seed)) {
      throw new InputError(`seed must be an integer, got ${String(seed)}: pass a whole number`, 'E_SEED');
    }
    this.name = options.name ?? 'corpus';
    this.vocabSize = options.vocabSize;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (t < 0 || t >= this.vocabSize) {
        throw new InputError(
          `token ${t} at position ${i} of '${this.name}' is outside the vocabulary [0, ${this.vocabSize}): use the tokenizer that produced the tokens`,
          'E_TOKEN_ID',
        );
      }
    }
    this.tokens = tokens;
    const at = splitIndex(tokens.length);
    this.train = tokens.subarray(0, at);
    this.val = tokens.subarray(at);
    this.seed = seed;
    this.rng = new Rng(seed);
  }

  /** Tokenize a corpus and build its dataset. */
  static fromCorpus(corpus: Corpus, tokenizer: Tokenizer, options: { seed?: number } = {}): TokenDataset {
    return new TokenDataset(tokenizer.encode(corpus.text), {
      name: corpus.name,
      vocabSize: tokenizer.vocabSize,
      seed: options.seed,
    });
  }

  /** State of the training sampler, to save with a checkpoint and restore with `rngState = …`. */
  get rngState(): number {
    return this.rng.state;
  }

  set rngState(value: number) {
    this.rng.state = value;
  }

  /**
   * Throw `InputError` unless both splits hold at least `T + 1` tokens (and `T`, `B` are positive integers).
   */
  checkShape(B: number, T: number): void {
    if (!Number.isInteger(B) || B < 1) {
      throw new InputError(`batch size must be a positive integer, got ${String(B)}`, 'E_BATCH');
    }
    if (!Number.isInteger(T) || T < 1) {
      throw new InputError(`sequence length must be a positive integer, got ${String(T)}`, 'E_SEQ_LEN');
    }
    const shortest = Math.min(this.train.length, this.val.length);
    if (T + 1 > shortest) {
      const needed = minTokensFor(T);
      throw new InputError(
        `corpus '${this.name}' is too short for sequence length ${T}: it has ${this.tokens.length} tokens ` +
          `(${this.train.length} train, ${this.val.length} validation) and each split needs at least ${T + 1}; ` +
          `use a corpus of at least ${needed} tokens or a shorter sequence length`,
        'E_CORPUS_TOO_SHORT',
      );
    }
  }

  /** `B` training windows of `T + 1` tokens at seeded uniform positions; advances the sampler. */
  sampleTrainWindows(B: number, T: number): Windows {
    this.checkShape(B, T);
    const W = T + 1;
    const data = new Int32Array(B * W);
    const starts = this.train.length - W + 1;
    for (let b = 0; b < B; b++) {
      const s = this.rng.nextInt(starts);
      data.set(this.train.subarray(s, s + W), b * W);
    }
    return { B, T, data };
  }

  /**
   * `count` batches of `B` validation windows at fixed positions, evenly spaced over the validation split
   * (`count * B` windows; window `i` starts at `floor(i * (len - T - 1) / (count * B - 1))`). Independent of the
   * seed and of the training sampler, so every evaluation sees the same tokens.
   */
  valWindows(B: number, T: number, count: number): Windows[] {
    this.checkShape(B, T);
    if (!Number.isInteger(count) || count < 1) {
      throw new InputError(
        `validation batch count must be a positive integer, got ${String(count)}`,
        'E_BATCH',
      );
    }
    const W = T + 1;
    const n = count * B;
    const last = this.val.length - W;
    const out: Windows[] = [];
    for (let c = 0; c < count; c++) {
      const data = new Int32Array(B * W);
      for (let b = 0; b < B; b++) {
        const i = c * B + b;
        const s = n === 1 ? 0 : Math.floor((i * last) / (n - 1));
        data.set(this.val.subarray(s, s + W), b * W);
      }
      out.push({ B, T, data });
    }
    return out;
  }

  /** One training batch: int32 tensors [B, T]. The caller disposes `inputs` and `targets`. */
  trainBatch(B: number, T: number): Batch {
    return windowsToBatch(this.sampleTrainWindows(B, T));
  }

  /** `count` fixed validation batches (see `valWindows`). The caller disposes every tensor. */
  valBatches(B: number, T: number, count: number): Batch[] {
    return this.valWindows(B, T, count).map(windowsToBatch);
  }
}

/**
 * Smallest corpus, in tokens, that fits sequence length `T`: the validation split (`ceil(n / 10)` tokens) must
 * hold `T + 1`, so `n = 10T + 1` (the training split then holds `9T >= T + 1`).
 */
export function minTokensFor(T: number): number {
  return 10 * T + 1;
}

/** Split flat windows into `inputs = window[:-1]`, `targets = window[1:]` as int32 tensors [B, T]. */
export function splitWindows(w: Windows): { inputs: Int32Array; targets: Int32Array } {
  const { B, T, data } = w;
  const W = T + 1;
  if (data.length !== B * W) {
    throw new RangeError(`windows hold ${data.length} tokens, expected B * (T + 1) = ${B * W}`);
  }
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    inputs.set(data.subarray(b * W, b * W + T), b * T);
    targets.set(data.subarray(b * W + 1, b * W + W), b * T);
  }
  return { inputs, targets };
}

/** Build a `Batch` of int32 tensors [B, T] from flat windows. The caller disposes both tensors. */
export function windowsToBatch(w: Windows): Batch {
  const { inputs, targets } = splitWindows(w);
  return {
    inputs: tf.tensor2d(inputs, [w.B, w.T], 'int32'),
    targets: tf.tensor2d(targets, [w.B, w.T], 'int32'),
  };
}
