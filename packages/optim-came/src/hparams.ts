import { defineHparams, finitePositive, unitInterval, weightDecayField } from '@kstar/core';

/**
 * CAME hyper-parameters under K* names. Defaults are `came_pytorch.CAME`'s; `lr` has none there
 * (`assert lr > 0`) and none here: it must be given (`CAME_TINY_LR` is the value K* suggests for the `tiny` preset).
 */
export interface CameHparams {
  /** Learning rate, finite and > 0 (reference `lr`, required there). */
  readonly lr: number;
  /** Momentum decay of the clipped update, in [0, 1) (reference `betas[0]`). Default 0.9. */
  readonly beta1: number;
  /** Decay of the factored second moment, in [0, 1) (reference `betas[1]`). Default 0.999. */
  readonly beta2: number;
  /** Decay of the factored instability (confidence), in [0, 1) (reference `betas[2]`). Default 0.9999. */
  readonly beta3: number;
  /** Added to g² before averaging, finite and > 0 (reference `eps[0]`). Default 1e-30. */
  readonly eps1: number;
  /** Added to the instability (U − m)², finite and > 0 (reference `eps[1]`). Default 1e-16. */
  readonly eps2: number;
  /** Update clipping: U ← U / max(1, RMS(U)/clipThreshold), finite and > 0. Default 1.0. */
  readonly clipThreshold: number;
  /** Decoupled weight decay λ: p ← p − λ·lr·p, finite and ≥ 0. Default 0. */
  readonly weightDecay: number;
}

/** Options of `came()` and `new CAME()`: `lr` (required, as in came_pytorch) and any subset of the others. */
export type CameOptions = { readonly lr: number } & Partial<Omit<CameHparams, 'lr'>>;

/**
 * Hyper-parameters under `came_pytorch.CAME`'s names, as the golden fixtures and `kstar replay` write them:
 * either flat (`beta1`, `beta2`, `beta3`, `eps1`, `eps2`) or as the constructor takes them (`betas`, `eps`).
 */
export interface CameReferenceHparams {
  readonly lr?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly beta3?: number;
  /** `betas=(β1, β2, β3)`; an alternative to `beta1`/`beta2`/`beta3`. */
  readonly betas?: readonly [number, number, number];
  readonly eps1?: number;
  readonly eps2?: number;
  /** `eps=(ε1, ε2)`; an alternative to `eps1`/`eps2`. */
  readonly eps?: readonly [number, number];
  readonly clip_threshold?: number;
  readonly weight_decay?: number;
}

/**
 * The learning rate K* uses for `kstar train --optimizer came` on the `tiny` GPT preset (300 steps; AdamW there
 * uses 3e-3): measured best of {1e-4, 3e-4, 1e-3}, 0.40% above AdamW's validation loss (see the README). Not a
 * default: `came()` requires `lr`.
 */
export const CAME_TINY_LR = 3e-4;

/** CAME's hyper-parameters declared once: defaults (none for `lr`), checks, came_pytorch's names. */
export const CAME_HPARAMS = defineHparams<CameHparams, 'lr'>({
  name: 'came',
  example: `with at least lr, such as {lr: ${CAME_TINY_LR}}`,
  // The reference asserts 0 ≤ β ≤ 1; β = 1 is refused here because it freezes a state at zero
  // (β1 = 1: no update ever; β2 = 1 or β3 = 1: rsqrt(0) → Inf/NaN parameters).
  fields: {
    lr: {
      required: `(came_pytorch.CAME has no default learning rate): pass e.g. {lr: ${CAME_TINY_LR}}, about 0.5–0.9× the AdamW lr for long runs`,
      ok: finitePositive,
      rule: 'a finite number > 0 (typically 0.5–0.9× the AdamW lr for long runs)',
      ref: 'lr',
    },
    beta1: { default: 0.9, ok: unitInterval, rule: 'in [0, 1) (typically 0.9)', ref: 'beta1' },
    beta2: { default: 0.999, ok: unitInterval, rule: 'in [0, 1) (typically 0.999, or 0.95)', ref: 'beta2' },
    beta3: {
      default: 0.9999,
      ok: unitInterval,
      rule: 'in [0, 1) and usually > beta2 (typically 0.9999, or 0.995)',
      ref: 'beta3',
    },
    eps1: { default: 1e-30, ok: finitePositive, rule: 'a finite number > 0 (typically 1e-30)', ref: 'eps1' },
    eps2: { default: 1e-16, ok: finitePositive, rule: 'a finite number > 0 (typically 1e-16)', ref: 'eps2' },
    clipThreshold: {
      default: 1.0,
      ok: finitePositive,
      rule: 'a finite number > 0 (typically 1.0)',
      ref: 'clip_threshold',
    },
    weightDecay: weightDecayField(0),
  },
  reference: {
    name: 'cameFromReferenceHparams',
    example: '{lr: 1e-4, betas: [0.9, 0.999, 0.9999]}',
    pairs: [
      { key: 'betas', fields: ['beta1', 'beta2', 'beta3'], shape: 'an array of 3 numbers' },
      { key: 'eps', fields: ['eps1', 'eps2'], shape: 'an array of 2 numbers' },
    ],
  },
});

/** The defaults of every hyper-parameter but `lr` (came_pytorch.CAME's). */
export const CAME_DEFAULTS: Omit<CameHparams, 'lr'> = CAME_HPARAMS.defaults;
