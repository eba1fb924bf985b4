import { InputError, PluginConflictError } from '@kstar/core';

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

/** `lomo_optim.Lomo` defaults. */
export const LOMO_DEFAULTS: LomoHparams = Object.freeze({
  lr: 1e-3,
  clipValue: null,
  clipGradNorm: null,
  weightDecay: 0,
});

/** `lomo_optim.AdaLomo` defaults. */
export const ADALOMO_DEFAULTS: AdaLomoHparams = Object.freeze({
  ...LOMO_DEFAULTS,
  eps1: 1e-30,
  eps2: 1e-3,
  clipThreshold: 1,
  decayRate: -0.8,
  lossScale: 1024,
});

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

export function checkLr(lr: unknown, who: string): number {
  if (!isNum(lr) || lr <= 0) {
    throw new InputError(`${who}: lr = ${String(lr)} is invalid: it must be a finite number > 0`);
  }
  return lr;
}

function positiveOrNull(v: unknown, field: string, who: string): number | null {
  if (v === undefined || v === null) return null;
  if (!isNum(v) || v <= 0) {
    throw new InputError(
      `${who}: ${field} = ${String(v)} is invalid: it must be a finite number > 0, or null (off)`,
    );
  }
  return v;
}

function nonNegative(v: unknown, field: string, who: string): number {
  if (!isNum(v) || v < 0) {
    throw new InputError(`${who}: ${field} = ${String(v)} is invalid: it must be a finite number ≥ 0`);
  }
  return v;
}

function positive(v: unknown, field: string, who: string): number {
  if (!isNum(v) || v <= 0) {
    throw new InputError(`${who}: ${field} = ${String(v)} is invalid: it must be a finite number > 0`);
  }
  return v;
}

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

const LOMO_KEYS = ['lr', 'clipValue', 'clipGradNorm', 'weightDecay', 'accumulate'];
const ADALOMO_KEYS = [...LOMO_KEYS, 'eps1', 'eps2', 'clipThreshold', 'decayRate', 'lossScale'];

function checkKeys(o: object, keys: string[], who: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) {
      throw new InputError(`${who}: unknown option '${k}': valid options are ${keys.join(', ')}`);
    }
  }
}

export function resolveLomoHparams(o: LomoOptions, who = 'lomo'): LomoHparams {
  checkKeys(o, LOMO_KEYS, who);
  checkAccumulate(o.accumulate, who);
  return Object.freeze({
    lr: checkLr(o.lr ?? LOMO_DEFAULTS.lr, who),
    clipValue: positiveOrNull(o.clipValue, 'clipValue', who),
    clipGradNorm: positiveOrNull(o.clipGradNorm, 'clipGradNorm', who),
    weightDecay: nonNegative(o.weightDecay ?? 0, 'weightDecay', who),
  });
}

export function resolveAdaLomoHparams(o: AdaLomoOptions, who = 'adalomo'): AdaLomoHparams {
  checkKeys(o, ADALOMO_KEYS, who);
  checkAccumulate(o.accumulate, who);
  const d = ADALOMO_DEFAULTS;
  const decayRate = o.decayRate ?? d.decayRate;
  if (!isNum(decayRate) || decayRate >= 0) {
    throw new InputError(
      `${who}: decayRate = ${String(decayRate)} is invalid: it must be a finite number < 0 (β̂2t = 1 − t^decayRate; default −0.8)`,
    );
  }
  return Object.freeze({
    lr: checkLr(o.lr ?? d.lr, who),
    clipValue: positiveOrNull(o.clipValue, 'clipValue', who),
    clipGradNorm: positiveOrNull(o.clipGradNorm, 'clipGradNorm', who),
    weightDecay: nonNegative(o.weightDecay ?? 0, 'weightDecay', who),
    eps1: nonNegative(o.eps1 ?? d.eps1, 'eps1', who),
    eps2: nonNegative(o.eps2 ?? d.eps2, 'eps2', who),
    clipThreshold: positive(o.clipThreshold ?? d.clipThreshold, 'clipThreshold', who),
    decayRate,
    // 0 / null: off, as `if self.loss_scale:` in the reference.
    lossScale:
      o.lossScale === undefined
        ? d.lossScale
        : o.lossScale === 0
          ? null
          : positiveOrNull(o.lossScale, 'lossScale', who),
  });
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

export function lomoReferenceToOptions(
  h: LomoReferenceHparams,
  who = 'lomoFromReferenceHparams',
): LomoOptions {
  checkKeys(h, ['lr', 'clip_grad_norm', 'clip_grad_value', 'weight_decay'], who);
  const o: LomoOptions = {};
  if (h.lr !== undefined) o.lr = h.lr;
  if (h.clip_grad_norm !== undefined) o.clipGradNorm = h.clip_grad_norm;
  if (h.clip_grad_value !== undefined) o.clipValue = h.clip_grad_value;
  if (h.weight_decay !== undefined) o.weightDecay = h.weight_decay;
  return o;
}

export function adalomoReferenceToOptions(
  h: AdaLomoReferenceHparams,
  who = 'adalomoFromReferenceHparams',
): AdaLomoOptions {
  checkKeys(
    h,
    [
      'lr',
      'clip_grad_norm',
      'clip_grad_value',
      'weight_decay',
      'loss_scale',
      'eps',
      'eps1',
      'eps2',
      'clip_threshold',
      'decay_rate',
    ],
    who,
  );
  const { loss_scale, eps, eps1, eps2, clip_threshold, decay_rate, ...rest } = h;
  const o: AdaLomoOptions = lomoReferenceToOptions(rest, who);
  if (eps !== undefined) {
    if (!Array.isArray(eps) || eps.length !== 2) {
      throw new InputError(`${who}: eps = ${JSON.stringify(eps)} is invalid: it must be [eps1, eps2]`);
    }
    o.eps1 = eps[0];
    o.eps2 = eps[1];
  }
  if (eps1 !== undefined) o.eps1 = eps1;
  if (eps2 !== undefined) o.eps2 = eps2;
  if (clip_threshold !== undefined) o.clipThreshold = clip_threshold;
  if (decay_rate !== undefined) o.decayRate = decay_rate;
  if (loss_scale !== undefined) o.lossScale = loss_scale;
  return o;
}
