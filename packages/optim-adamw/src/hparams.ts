import {
  BETAS_PAIR,
  type BetasReference,
  defineHparams,
  finitePositive,
  unitInterval,
  weightDecayField,
} from '@kstar/core';

/** AdamW hyper-parameters (K* names). Defaults are torch.optim.AdamW's. */
export interface AdamWHparams {
  /** Learning rate, finite and > 0. Default 1e-3. */
  readonly lr: number;
  /** First-moment decay, in [0, 1). Default 0.9. */
  readonly beta1: number;
  /** Second-moment decay, in [0, 1). Default 0.999. */
  readonly beta2: number;
  /** Added to √v̂, finite and > 0. Default 1e-8. */
  readonly eps: number;
  /** Decoupled weight decay λ (p ← p·(1 − lr·λ)), finite and ≥ 0. Default 0.01. */
  readonly weightDecay: number;
}

/** Options of `adamw()` and `new AdamW()`: any subset of the hyper-parameters. */
export type AdamWOptions = Partial<AdamWHparams>;

/** Hyper-parameters under torch.optim.AdamW's names, as the golden fixtures and `kstar replay` write them. */
export interface AdamWReferenceHparams extends BetasReference {
  readonly lr?: number;
  readonly eps?: number;
  readonly weight_decay?: number;
}

/** AdamW's hyper-parameters declared once: defaults, checks, torch's names. */
export const ADAMW_HPARAMS = defineHparams<AdamWHparams>({
  name: 'adamw',
  example: 'such as {lr: 1e-3}',
  fields: {
    lr: {
      default: 1e-3,
      ok: finitePositive,
      rule: 'a finite number > 0 (typically 1e-4 to 1e-2)',
      ref: 'lr',
    },
    beta1: { default: 0.9, ok: unitInterval, rule: 'in [0, 1) (typically 0.9)', ref: 'beta1' },
    beta2: { default: 0.999, ok: unitInterval, rule: 'in [0, 1) (typically 0.95 to 0.999)', ref: 'beta2' },
    eps: { default: 1e-8, ok: finitePositive, rule: 'a finite number > 0 (typically 1e-8)', ref: 'eps' },
    weightDecay: weightDecayField(0.01),
  },
  reference: {
    name: 'adamwFromReferenceHparams',
    example: '{lr: 0.01, weight_decay: 0.01}',
    pairs: [BETAS_PAIR],
  },
});

export const ADAMW_DEFAULTS: AdamWHparams = ADAMW_HPARAMS.defaults;
