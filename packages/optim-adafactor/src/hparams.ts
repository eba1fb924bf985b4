import {
  defineHparams,
  finiteNonNegative,
  finitePositive,
  InputError,
  isBoolean,
  numberWhere,
  orNull,
  weightDecayField,
} from '@kstar/core';

/**
 * Adafactor hyper-parameters under K* names. Defaults and checks are those of
 * `transformers.optimization.Adafactor` (HF), which K* reproduces exactly.
 */
export interface AdafactorHparams {
  /** External learning rate; `null` with `relativeStep` (HF `lr=None`). Required (finite > 0) without it. */
  readonly lr: number | null;
  /** Step size ρ_t = min(warmupInit ? 1e-6·t : 1e-2, 1/√t) instead of `lr`. Default true (HF). */
  readonly relativeStep: boolean;
  /** With `relativeStep`: ρ_t = min(1e-6·t, 1/√t) (linear warm-up). Default false. */
  readonly warmupInit: boolean;
  /** Multiply the step size by max(eps2, RMS(p)) (RMS before the update). Default true. */
  readonly scaleParameter: boolean;
  /** First-moment decay, in [0, 1), or `null` for no momentum (no extra state). Default null. */
  readonly beta1: number | null;
  /** The update is divided by max(1, RMS(U)/clipThreshold); finite > 0. Default 1.0. */
  readonly clipThreshold: number;
  /** β̂2_t = 1 − t^decayRate; finite ≤ 0. Default −0.8. */
  readonly decayRate: number;
  /** Added to g² (regulariser of the second moment); finite > 0. Default 1e-30. */
  readonly eps1: number;
  /** Floor on RMS(p) for the parameter scale; finite ≥ 0. Default 1e-3. */
  readonly eps2: number;
  /** p ← p − weightDecay·alpha·p (alpha includes the parameter scale); finite ≥ 0. Default 0. */
  readonly weightDecay: number;
}

/** Options of `adafactor()` and `new Adafactor()`: any subset of the hyper-parameters. */
export type AdafactorOptions = { -readonly [K in keyof AdafactorHparams]?: AdafactorHparams[K] };

/**
 * Hyper-parameters under HF's names, as the golden fixtures and `kstar replay` carry them. `eps` is HF's pair
 * `(eps1, eps2)`; the fixtures spell it `eps1`/`eps2`. `lr: null` means HF's `lr=None`.
 */
export interface AdafactorReferenceHparams {
  readonly lr?: number | null;
  readonly eps?: readonly [number, number];
  readonly eps1?: number;
  readonly eps2?: number;
  readonly clip_threshold?: number;
  readonly decay_rate?: number;
  readonly beta1?: number | null;
  readonly weight_decay?: number;
  readonly scale_parameter?: boolean;
  readonly relative_step?: boolean;
  readonly warmup_init?: boolean;
}

const bool = { ok: isBoolean, rule: 'true or false' };

/**
 * Adafactor's hyper-parameters declared once: defaults, checks (HF's two constructor errors, as `InputError`:
 * an explicit `lr` with `relativeStep`, "Cannot combine manual `lr` and `relative_step=True` options", and
 * `warmupInit` without `relativeStep`; without `relativeStep` an `lr` is required, where HF would fail with a
 * TypeError at the first step) and HF's names. `eps` is HF's pair `(eps1, eps2)`; the fixtures spell it `eps1`/`eps2`.
 */
export const ADAFACTOR_HPARAMS = defineHparams<AdafactorHparams>({
  name: 'adafactor',
  example: 'such as {lr: 1e-3, relativeStep: false}',
  fields: {
    lr: {
      default: null,
      ok: orNull(finitePositive),
      rule: 'a finite number > 0 (typically 1e-3), or null with relativeStep',
      ref: 'lr',
    },
    relativeStep: { default: true, ...bool, ref: 'relative_step' },
    warmupInit: { default: false, ...bool, ref: 'warmup_init' },
    scaleParameter: { default: true, ...bool, ref: 'scale_parameter' },
    beta1: {
      default: null,
      ok: orNull(numberWhere((x) => x >= 0 && x < 1)),
      rule: 'in [0, 1) (typically 0.9), or null for no momentum',
      ref: 'beta1',
    },
    clipThreshold: {
      default: 1.0,
      ok: finitePositive,
      rule: 'a finite number > 0 (HF: 1.0)',
      ref: 'clip_threshold',
    },
    decayRate: {
      default: -0.8,
      ok: numberWhere((x) => Number.isFinite(x) && x <= 0),
      rule: 'a finite number ≤ 0 so that β̂2 = 1 − t^decayRate stays in [0, 1) (HF: -0.8)',
      ref: 'decay_rate',
    },
    eps1: {
      default: 1e-30,
      ok: finitePositive,
      rule: 'a finite number > 0 (HF: 1e-30; 0 would give 0·∞ = NaN for zero gradients)',
      ref: 'eps1',
    },
    eps2: { default: 1e-3, ok: finiteNonNegative, rule: 'a finite number ≥ 0 (HF: 1e-3)', ref: 'eps2' },
    weightDecay: weightDecayField(0),
  },
  crossCheck(hp, where) {
    if (hp.lr !== null && hp.relativeStep) {
      throw new InputError(
        `${where}: lr = ${hp.lr} cannot be combined with relativeStep = true (HF: "Cannot combine manual lr and relative_step=True options"): pass relativeStep: false (and usually scaleParameter: false) to use an external lr, or drop lr`,
      );
    }
    if (hp.warmupInit && !hp.relativeStep) {
      throw new InputError(
        `${where}: warmupInit = true requires relativeStep = true (HF: "warmup_init=True requires relative_step=True")`,
      );
    }
    if (hp.lr === null && !hp.relativeStep) {
      throw new InputError(
        `${where}: lr = null is invalid with relativeStep = false: give a finite lr > 0 (typically 1e-3), or set relativeStep: true`,
      );
    }
  },
  reference: {
    name: 'adafactorFromReferenceHparams',
    example: '{lr: null, relative_step: true, scale_parameter: true}',
    pairs: [{ key: 'eps', fields: ['eps1', 'eps2'], shape: '[eps1, eps2] (HF: [1e-30, 1e-3])' }],
  },
});

export const ADAFACTOR_DEFAULTS: AdafactorHparams = ADAFACTOR_HPARAMS.defaults;

/** Checks an lr assigned between steps (schedules): finite > 0 (null only belongs to relativeStep). */
export function checkExternalLr(value: unknown, where = 'adafactor'): number {
  if (value === null) {
    throw new InputError(`${where}: lr = null is invalid here: a schedule must assign a finite number > 0`);
  }
  return ADAFACTOR_HPARAMS.check('lr', value, where) as number;
}

/**
 * The step size ρ_t (before the parameter scale) and β̂2_t of step t (1-based), in float64, as HF's `_get_lr`
 * and `beta2t` compute them.
 */
export function stepConstants(hp: AdafactorHparams, step: number): { rho: number; beta2t: number } {
  const rho = hp.relativeStep
    ? Math.min(hp.warmupInit ? 1e-6 * step : 1e-2, 1 / Math.sqrt(step))
    : (hp.lr as number);
  return { rho, beta2t: 1 - step ** hp.decayRate };
}
