import { InputError } from '@kstar/core';

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

export const ADAFACTOR_DEFAULTS: AdafactorHparams = Object.freeze({
  lr: null,
  relativeStep: true,
  warmupInit: false,
  scaleParameter: true,
  beta1: null,
  clipThreshold: 1.0,
  decayRate: -0.8,
  eps1: 1e-30,
  eps2: 1e-3,
  weightDecay: 0,
});

type Field = keyof AdafactorHparams;

const isNum = (x: unknown): x is number => typeof x === 'number';
const RULES: Record<Field, { ok: (x: unknown) => boolean; rule: string }> = {
  lr: {
    ok: (x) => x === null || (isNum(x) && Number.isFinite(x) && x > 0),
    rule: 'a finite number > 0 (typically 1e-3), or null with relativeStep',
  },
  relativeStep: { ok: (x) => typeof x === 'boolean', rule: 'true or false' },
  warmupInit: { ok: (x) => typeof x === 'boolean', rule: 'true or false' },
  scaleParameter: { ok: (x) => typeof x === 'boolean', rule: 'true or false' },
  beta1: {
    ok: (x) => x === null || (isNum(x) && x >= 0 && x < 1),
    rule: 'in [0, 1) (typically 0.9), or null for no momentum',
  },
  clipThreshold: {
    ok: (x) => isNum(x) && Number.isFinite(x) && x > 0,
    rule: 'a finite number > 0 (HF: 1.0)',
  },
  decayRate: {
    ok: (x) => isNum(x) && Number.isFinite(x) && x <= 0,
    rule: 'a finite number ≤ 0 so that β̂2 = 1 − t^decayRate stays in [0, 1) (HF: -0.8)',
  },
  eps1: {
    ok: (x) => isNum(x) && Number.isFinite(x) && x > 0,
    rule: 'a finite number > 0 (HF: 1e-30; 0 would give 0·∞ = NaN for zero gradients)',
  },
  eps2: { ok: (x) => isNum(x) && Number.isFinite(x) && x >= 0, rule: 'a finite number ≥ 0 (HF: 1e-3)' },
  weightDecay: {
    ok: (x) => isNum(x) && Number.isFinite(x) && x >= 0,
    rule: 'a finite number ≥ 0 (0 turns decay off)',
  },
};

function show(value: unknown): string {
  return typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
}

/** Checks one hyper-parameter; throws `InputError` naming the value and the valid range. */
export function checkHparam<F extends Field>(
  field: F,
  value: unknown,
  where = 'adafactor',
): AdafactorHparams[F] {
  if (!RULES[field].ok(value)) {
    throw new InputError(`${where}: ${field} = ${show(value)} is invalid: it must be ${RULES[field].rule}`);
  }
  return value as AdafactorHparams[F];
}

/** Checks an lr assigned between steps (schedules): finite > 0 (null only belongs to relativeStep). */
export function checkExternalLr(value: unknown, where = 'adafactor'): number {
  if (value === null) {
    throw new InputError(`${where}: lr = null is invalid here: a schedule must assign a finite number > 0`);
  }
  return checkHparam('lr', value, where) as number;
}

/**
 * Fills defaults and validates, including HF's two constructor errors (as `InputError`): an explicit `lr` with
 * `relativeStep` ("Cannot combine manual `lr` and `relative_step=True` options") and `warmupInit` without
 * `relativeStep`. Without `relativeStep` an `lr` is required (HF would fail with a TypeError at the first step).
 */
export function resolveAdafactorHparams(
  options: AdafactorOptions = {},
  where = 'adafactor',
): AdafactorHparams {
  if (options === null || typeof options !== 'object') {
    throw new InputError(
      `${where}: options must be an object such as {lr: 1e-3, relativeStep: false}, got ${String(options)}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(ADAFACTOR_DEFAULTS, key)) {
      throw new InputError(
        `${where}: unknown option '${key}': the options are ${Object.keys(ADAFACTOR_DEFAULTS).join(', ')}`,
      );
    }
  }
  const out = {} as { -readonly [K in Field]: AdafactorHparams[K] };
  for (const field of Object.keys(ADAFACTOR_DEFAULTS) as Field[]) {
    const given = options[field];
    (out as Record<Field, unknown>)[field] = checkHparam(
      field,
      given === undefined ? ADAFACTOR_DEFAULTS[field] : given,
      where,
    );
  }
  if (out.lr !== null && out.relativeStep) {
    throw new InputError(
      `${where}: lr = ${out.lr} cannot be combined with relativeStep = true (HF: "Cannot combine manual lr and relative_step=True options"): pass relativeStep: false (and usually scaleParameter: false) to use an external lr, or drop lr`,
    );
  }
  if (out.warmupInit && !out.relativeStep) {
    throw new InputError(
      `${where}: warmupInit = true requires relativeStep = true (HF: "warmup_init=True requires relative_step=True")`,
    );
  }
  if (out.lr === null && !out.relativeStep) {
    throw new InputError(
      `${where}: lr = null is invalid with relativeStep = false: give a finite lr > 0 (typically 1e-3), or set relativeStep: true`,
    );
  }
  return Object.freeze(out);
}

const REFERENCE_KEYS = [
  'lr',
  'eps',
  'eps1',
  'eps2',
  'clip_threshold',
  'decay_rate',
  'beta1',
  'weight_decay',
  'scale_parameter',
  'relative_step',
  'warmup_init',
];

/** Converts HF-named hyper-parameters (`relative_step`, `eps: [eps1, eps2]` or `eps1`/`eps2`, …) to K* options. */
export function referenceToOptions(
  ref: AdafactorReferenceHparams,
  where = 'adafactorFromReferenceHparams',
): AdafactorOptions {
  if (ref === null || typeof ref !== 'object') {
    throw new InputError(
      `${where}: expected an object such as {lr: null, relative_step: true, scale_parameter: true}, got ${String(ref)}`,
    );
  }
  for (const key of Object.keys(ref)) {
    if (!REFERENCE_KEYS.includes(key)) {
      throw new InputError(
        `${where}: unknown hyper-parameter '${key}': accepted are ${REFERENCE_KEYS.join(', ')}`,
      );
    }
  }
  let { eps1, eps2 } = ref;
  if (ref.eps !== undefined) {
    if (!Array.isArray(ref.eps) || ref.eps.length !== 2) {
      throw new InputError(
        `${where}: eps = ${JSON.stringify(ref.eps)} is invalid: it must be [eps1, eps2] (HF: [1e-30, 1e-3])`,
      );
    }
    if (eps1 !== undefined || eps2 !== undefined) {
      throw new InputError(`${where}: give either eps or eps1/eps2, not both`);
    }
    [eps1, eps2] = ref.eps;
  }
  const o: AdafactorOptions = {};
  if (ref.lr !== undefined) o.lr = ref.lr;
  if (ref.relative_step !== undefined) o.relativeStep = ref.relative_step;
  if (ref.warmup_init !== undefined) o.warmupInit = ref.warmup_init;
  if (ref.scale_parameter !== undefined) o.scaleParameter = ref.scale_parameter;
  if (ref.beta1 !== undefined) o.beta1 = ref.beta1;
  if (ref.clip_threshold !== undefined) o.clipThreshold = ref.clip_threshold;
  if (ref.decay_rate !== undefined) o.decayRate = ref.decay_rate;
  if (eps1 !== undefined) o.eps1 = eps1;
  if (eps2 !== undefined) o.eps2 = eps2;
  if (ref.weight_decay !== undefined) o.weightDecay = ref.weight_decay;
  return o;
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
