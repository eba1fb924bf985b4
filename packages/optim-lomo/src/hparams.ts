import {
  defineHparams,
  finiteNonNegative,
  finitePositive,
  InputError,
  numberWhere,
  orNull,
  PluginConflictError,
  weightDecayField,
} from '@kstar/core';

/**
 * Hyper-parameters of LOMO and AdaLomo, named as in K* (camelCase) with the `lomo_optim` names beside them.
 * Validation errors are `InputError`s naming the field, its value and the valid range.
 */

/** Options shared by `lomo()` and `adalomo()`. */
export interface LomoCommonOptions {
  /** Learning rate (`lr`). Finite, > 0. Schedules set it between steps through the plugin's `learningRate`. */
  lr?: number;
  /** Clip each gradient element to [−clipValue, clipValue] before the update (`clip_grad_value`); null: off. */
  clipValue?: number | null;
  /**
   * Clip the gradient by its GLOBAL L2 norm (`clip_grad_norm`): g ← g·min(1, clipGradNorm/(‖g‖ + 1e-6)). The
   * norm needs every gradient before any parameter moves, so it costs a second backward pass: use `lomoStep`.
   */
  clipGradNorm?: number | null;
  /** Decoupled weight decay (`weight_decay`): LOMO p·(1 − lr·wd); AdaLomo p·(1 − lr·max(eps2, RMS(p))·wd). */
  weightDecay?: number;
  /**
   * Gradient-accumulation steps. Only 1 is possible: LOMO/AdaLomo update inside the backward pass and free each
   * gradient at once. Any other value throws a `PluginConflictError` (see `lomoAccumulationError`).
   */
  accumulate?: number;
}

export type LomoOptions = LomoCommonOptions;

export interface AdaLomoOptions extends LomoCommonOptions {
  /** ε1, added to g² (`eps[0]`). Default 1e-30. */
  eps1?: number;
  /** ε2, floor on RMS(p) in the lr scale (`eps[1]`). Default 1e-3. */
  eps2?: number;
  /** Update clipping threshold d: U ← U / max(1, RMS(U)/d) (`clip_threshold`). Default 1. */
  clipThreshold?: number;
  /** β̂2t = 1 − t^decayRate (`decay_rate`). Default −0.8. Must be < 0. */
  decayRate?: number;
  /**
   * The reference's `loss_scale` (default 2¹⁰): it multiplies the loss and divides every gradient back. In
   * float32 with an unscaled loss that is the identity up to rounding, so K* records it and does not apply it.
   */
  lossScale?: number | null;
}

export interface LomoHparams {
  readonly lr: number;
  readonly clipValue: number | null;
  readonly clipGradNorm: number | null;
  readonly weightDecay: number;
}

export interface AdaLomoHparams extends LomoHparams {
  readonly eps1: number;
  readonly eps2: number;
  readonly clipThreshold: number;
  readonly decayRate: number;
  readonly lossScale: number | null;
}

/** LOMO's hyper-parameters declared once: `lomo_optim.Lomo`'s defaults and names (`accumulate` is not one). */
export const LOMO_HPARAMS = defineHparams<LomoHparams>({
  name: 'lomo',
  example: 'such as {lr: 1e-3}',
  fields: {
    lr: { default: 1e-3, ok: finitePositive, rule: 'a finite number > 0', ref: 'lr' },
    clipValue: {
      default: null,
      ok: orNull(finitePositive),
      rule: 'a finite number > 0, or null (off)',
      ref: 'clip_grad_value',
    },
    clipGradNorm: {
      default: null,
      ok: orNull(finitePositive),
      rule: 'a finite number > 0, or null (off)',
      ref: 'clip_grad_norm',
    },
    weightDecay: weightDecayField(0, 'a finite number ≥ 0'),
  },
  extraOptions: ['accumulate'],
  reference: { name: 'lomoFromReferenceHparams', example: '{lr: 1e-3}' },
});

/** AdaLomo's: LOMO's and `lomo_optim.AdaLomo`'s own (`eps` is the pair `[eps1, eps2]`). */
export const ADALOMO_HPARAMS = defineHparams<AdaLomoHparams>({
  name: 'adalomo',
  example: 'such as {lr: 1e-3}',
  fields: {
    ...LOMO_HPARAMS.fields,
    eps1: { default: 1e-30, ok: finiteNonNegative, rule: 'a finite number ≥ 0', ref: 'eps1' },
    eps2: { default: 1e-3, ok: finiteNonNegative, rule: 'a finite number ≥ 0', ref: 'eps2' },
    clipThreshold: { default: 1, ok: finitePositive, rule: 'a finite number > 0', ref: 'clip_threshold' },
    decayRate: {
      default: -0.8,
      ok: numberWhere((x) => Number.isFinite(x) && x < 0),
      rule: 'a finite number < 0 (β̂2t = 1 − t^decayRate; default −0.8)',
      ref: 'decay_rate',
    },
    // 0 / null: off, as `if self.loss_scale:` in the reference.
    lossScale: {
      default: 1024,
      ok: (x) => x === 0 || orNull(finitePositive)(x),
      rule: 'a finite number > 0, or 0 or null (off)',
      ref: 'loss_scale',
      normalize: (x) => (x === 0 ? null : x),
    },
  },
  extraOptions: ['accumulate'],
  reference: {
    name: 'adalomoFromReferenceHparams',
    example: '{lr: 1e-3, eps: [1e-30, 1e-3]}',
    pairs: [{ key: 'eps', fields: ['eps1', 'eps2'], shape: '[eps1, eps2]' }],
  },
});

/** `lomo_optim.Lomo` defaults. */
export const LOMO_DEFAULTS: LomoHparams = LOMO_HPARAMS.defaults;

/** `lomo_optim.AdaLomo` defaults. */
export const ADALOMO_DEFAULTS: AdaLomoHparams = ADALOMO_HPARAMS.defaults;

/**
 * The error for gradient accumulation with LOMO/AdaLomo (`steps` micro-batches per update). LOMO updates each
 * parameter inside the backward pass and frees its gradient at once, so nothing is left to accumulate into.
 */
export function lomoAccumulationError(steps: number, who = 'lomo'): PluginConflictError {
  return new PluginConflictError(
    `${who}: gradient accumulation over ${steps} micro-batches was requested, but LOMO updates inside the backward pass and frees each gradient at once, so gradients cannot be accumulated across micro-batches: use a larger batch, or AdamW/Adafactor with accumulation`,
  );
}

function checkAccumulate(v: unknown, who: string): void {
  if (v === undefined || v === null || v === 1) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new InputError(
      `${who}: accumulate = ${String(v)} is invalid: it must be an integer ≥ 1 (and LOMO supports only 1)`,
    );
  }
  throw lomoAccumulationError(v, who);
}

export function resolveLomoHparams(o: LomoOptions, who = 'lomo'): LomoHparams {
  const hparams = LOMO_HPARAMS.resolve(o, who);
  checkAccumulate(o.accumulate, who);
  return hparams;
}

export function resolveAdaLomoHparams(o: AdaLomoOptions, who = 'adalomo'): AdaLomoHparams {
  const hparams = ADALOMO_HPARAMS.resolve(o, who);
  checkAccumulate(o.accumulate, who);
  return hparams;
}

/** `lomo_optim.Lomo` argument names (the golden `sgd` run carries `{lr}`). */
export interface LomoReferenceHparams {
  lr?: number;
  clip_grad_norm?: number | null;
  clip_grad_value?: number | null;
  weight_decay?: number;
}

/** `lomo_optim.AdaLomo` argument names; `eps` may be given as `[eps1, eps2]` or as `eps1`, `eps2`. */
export interface AdaLomoReferenceHparams extends LomoReferenceHparams {
  loss_scale?: number | null;
  eps?: readonly [number, number];
  eps1?: number;
  eps2?: number;
  clip_threshold?: number;
  decay_rate?: number;
}
