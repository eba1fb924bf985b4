import {
  BETAS_PAIR,
  type BetasReference,
  defineHparams,
  finitePositive,
  isBoolean,
  numberWhere,
  unitInterval,
  weightDecayField,
} from '@kstar/core';

/** 8-bit Adam hyper-parameters (K* names). Defaults are `bnb.optim.Adam8bit`'s (bitsandbytes 95f9af3). */
export interface Adam8bitHparams {
  /** Learning rate. Finite, > 0. Default 1e-3. */
  readonly lr: number;
  /** First-moment decay, in [0, 1). Default 0.9. */
  readonly beta1: number;
  /** Second-moment decay, in [0, 1). Default 0.999. */
  readonly beta2: number;
  /** Added to √v̂. Finite, > 0. Default 1e-8. */
  readonly eps: number;
  /** Decoupled weight decay λ: p ← p·(1 − lr·λ), applied BEFORE the Adam update (torch AdamW order). ≥ 0. Default 0. */
  readonly weightDecay: number;
  /** Elements per absmax block. Integer in [1, 1048576]. Default 256 (bitsandbytes since 0.44). */
  readonly blockSize: number;
  /** Tensors with fewer elements keep float32 m and v (bitsandbytes' min_8bit_size). Integer ≥ 0. Default 4096. */
  readonly minQuantizedSize: number;
  /** Keep float32 state for parameters of role 'embedding' (HF Trainer's / StableEmbedding's rule). Default false. */
  readonly float32Embeddings: boolean;
}

export type Adam8bitOptions = Partial<Adam8bitHparams>;

/** Hyper-parameters under torch/bitsandbytes names, as the golden fixtures and `kstar replay` write them. */
export interface Adam8bitReferenceHparams extends BetasReference {
  readonly lr?: number;
  readonly eps?: number;
  readonly weight_decay?: number;
  readonly min_8bit_size?: number;
  readonly block_size?: number;
  /** torch's amsgrad: only false is accepted (bitsandbytes rejects it too). */
  readonly amsgrad?: boolean;
}

/** 8-bit Adam's hyper-parameters declared once: defaults, checks, torch/bitsandbytes names. */
export const ADAM8BIT_HPARAMS = defineHparams<Adam8bitHparams>({
  name: 'adam8bit',
  example: 'such as {lr: 1e-3}',
  fields: {
    lr: { default: 1e-3, ok: finitePositive, rule: 'a finite number > 0 (e.g. 1e-3)', ref: 'lr' },
    beta1: { default: 0.9, ok: unitInterval, rule: 'in [0, 1) (typically 0.9)', ref: 'beta1' },
    beta2: { default: 0.999, ok: unitInterval, rule: 'in [0, 1) (typically 0.999)', ref: 'beta2' },
    eps: { default: 1e-8, ok: finitePositive, rule: 'a finite number > 0 (typically 1e-8)', ref: 'eps' },
    weightDecay: weightDecayField(0),
    blockSize: {
      default: 256,
      ok: numberWhere((x) => Number.isInteger(x) && x >= 1 && x <= 1 << 20),
      rule: 'an integer in [1, 1048576] (bitsandbytes uses 256)',
      ref: 'block_size',
    },
    minQuantizedSize: {
      default: 4096,
      ok: numberWhere((x) => Number.isInteger(x) && x >= 0),
      rule: 'an integer ≥ 0 (bitsandbytes uses 4096; 0 quantizes every tensor)',
      ref: 'min_8bit_size',
    },
    float32Embeddings: { default: false, ok: isBoolean, rule: 'true or false' },
  },
  reference: {
    name: 'adam8bitFromReferenceHparams',
    example: '{lr: 1e-3, weight_decay: 0.01}',
    pairs: [BETAS_PAIR],
    // torch's amsgrad: bitsandbytes rejects it too.
    ignored: { amsgrad: { ok: (x) => x === false, rule: 'false (8-bit Adam supports only false)' } },
  },
});

export const ADAM8BIT_DEFAULTS: Adam8bitHparams = ADAM8BIT_HPARAMS.defaults;
