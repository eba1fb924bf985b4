import {
  BETAS_PAIR,
  type BetasReference,
  defineHparams,
  finitePositive,
  isBoolean,
  numberWhere,
  weightDecayField,
} from '@kstar/core';

/** Lion hyper-parameters (K* names). Defaults are `lion_pytorch.Lion`'s (lucidrains/lion-pytorch 6a74fdc). */
export interface LionHparams {
  /** Learning rate: every element moves by exactly ±lr (or 0) per step, besides weight decay. Finite, > 0. Default 1e-4. */
  readonly lr: number;
  /** Interpolation weight of the momentum in the update direction c = β1·m + (1−β1)·g, in [0, 1]. Default 0.9. */
  readonly beta1: number;
  /** Momentum decay, m ← β2·m + (1−β2)·g (after the update), in [0, 1]. Default 0.99. */
  readonly beta2: number;
  /** Decoupled weight decay λ: p ← p·(1 − lr·λ) before the sign update. Finite, ≥ 0. Default 0. */
  readonly weightDecay: number;
  /**
   * lion_pytorch's `decoupled_weight_decay`: divide λ by the learning rate given at construction, so the decay is
   * p ← p·(1 − (lr/lr₀)·λ) and does not scale with the size of lr itself (only with a schedule's ratio). Default false.
   */
  readonly decoupledWeightDecay: boolean;
}

/** Options of `lion()` and `new Lion()`: any subset of the hyper-parameters. */
export type LionOptions = Partial<LionHparams>;

/** Hyper-parameters under lion_pytorch's names, as the golden fixtures and `kstar replay` write them. */
export interface LionReferenceHparams extends BetasReference {
  readonly lr?: number;
  readonly weight_decay?: number;
  readonly decoupled_weight_decay?: boolean;
  /** lion_pytorch's Triton kernel switch: the same arithmetic, accepted and ignored. */
  readonly use_triton?: boolean;
}

/** Lion's hyper-parameters declared once: defaults, checks, lion_pytorch's names. */
export const LION_HPARAMS = defineHparams<LionHparams>({
  name: 'lion',
  example: 'such as {lr: 1e-4}',
  fields: {
    lr: {
      default: 1e-4,
      ok: finitePositive,
      rule: 'a finite number > 0 (typically 3–10× smaller than AdamW’s, e.g. 1e-4 to 1e-3)',
      ref: 'lr',
    },
    // lion_pytorch asserts 0 ≤ β ≤ 1 for both (β1 = 0 is SignSGD on g, β2 = 1 freezes the momentum).
    beta1: {
      default: 0.9,
      ok: numberWhere((x) => x >= 0 && x <= 1),
      rule: 'in [0, 1] (typically 0.9 or 0.95)',
      ref: 'beta1',
    },
    beta2: {
      default: 0.99,
      ok: numberWhere((x) => x >= 0 && x <= 1),
      rule: 'in [0, 1] (typically 0.98 or 0.99)',
      ref: 'beta2',
    },
    weightDecay: weightDecayField(0, 'a finite number ≥ 0 (0 turns decay off; typically 3–10× AdamW’s)'),
    decoupledWeightDecay: {
      default: false,
      ok: isBoolean,
      rule: 'true or false',
      ref: 'decoupled_weight_decay',
    },
  },
  reference: {
    name: 'lionFromReferenceHparams',
    example: '{lr: 1e-4, weight_decay: 0.1}',
    pairs: [BETAS_PAIR],
    ignored: { use_triton: { ok: isBoolean, rule: 'true or false' } },
  },
});

export const LION_DEFAULTS: LionHparams = LION_HPARAMS.defaults;
