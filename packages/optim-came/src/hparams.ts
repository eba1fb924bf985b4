import { InputError } from '@kstar/core';

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

/** The defaults of every hyper-parameter but `lr` (came_pytorch.CAME's). */
export const CAME_DEFAULTS: Omit<CameHparams, 'lr'> = Object.freeze({
  beta1: 0.9,
  beta2: 0.999,
  beta3: 0.9999,
  eps1: 1e-30,
  eps2: 1e-16,
  clipThreshold: 1.0,
  weightDecay: 0,
});

const finitePositive = (x: number) => Number.isFinite(x) && x > 0;
const unitInterval = (x: number) => x >= 0 && x < 1;

// The reference asserts 0 ≤ β ≤ 1; β = 1 is refused here because it freezes a state at zero
// (β1 = 1: no update ever; β2 = 1 or β3 = 1: rsqrt(0) → Inf/NaN parameters).
const RULES: Record<keyof CameHparams, { ok: (x: number) => boolean; rule: string }> = {
  lr: { ok: finitePositive, rule: 'a finite number > 0 (typically 0.5–0.9× the AdamW lr for long runs)' },
  beta1: { ok: unitInterval, rule: 'in [0, 1) (typically 0.9)' },
  beta2: { ok: unitInterval, rule: 'in [0, 1) (typically 0.999, or 0.95)' },
  beta3: { ok: unitInterval, rule: 'in [0, 1) and usually > beta2 (typically 0.9999, or 0.995)' },
  eps1: { ok: finitePositive, rule: 'a finite number > 0 (typically 1e-30)' },
  eps2: { ok: finitePositive, rule: 'a finite number > 0 (typically 1e-16)' },
  clipThreshold: { ok: finitePositive, rule: 'a finite number > 0 (typically 1.0)' },
  weightDecay: { ok: (x) => Number.isFinite(x) && x >= 0, rule: 'a finite number ≥ 0 (0 turns decay off)' },
};

/** Checks one hyper-parameter; throws `InputError` naming the value and the valid range. */
export function checkHparam(field: keyof CameHparams, value: unknown, where = 'came'): number {
  if (typeof value !== 'number' || !RULES[field].ok(value)) {
    const shown = typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
    throw new InputError(`${where}: ${field} = ${shown} is invalid: it must be ${RULES[field].rule}`);
  }
  return value;
}

/** Fills defaults and validates. Unknown option names are rejected (a typo would otherwise be ignored). */
export function resolveCameHparams(options: CameOptions | undefined, where = 'came'): CameHparams {
  if (options === null || typeof options !== 'object') {
    throw new InputError(
      `${where}: options must be an object with at least lr, such as {lr: ${CAME_TINY_LR}}, got ${String(options)}`,
    );
  }
  const names = ['lr', ...Object.keys(CAME_DEFAULTS)];
  for (const key of Object.keys(options)) {
    if (!names.includes(key)) {
      throw new InputError(`${where}: unknown option '${key}': the options are ${names.join(', ')}`);
    }
  }
  if (options.lr === undefined) {
    throw new InputError(
      `${where}: lr is required (came_pytorch.CAME has no default learning rate): pass e.g. {lr: ${CAME_TINY_LR}}, ` +
        'about 0.5–0.9× the AdamW lr for long runs',
    );
  }
  const out = { lr: checkHparam('lr', options.lr, where) } as Record<keyof CameHparams, number>;
  for (const field of Object.keys(CAME_DEFAULTS) as (keyof typeof CAME_DEFAULTS)[]) {
    const given = options[field];
    out[field] = checkHparam(field, given === undefined ? CAME_DEFAULTS[field] : given, where);
  }
  return Object.freeze(out);
}

const REFERENCE_KEYS = [
  'lr',
  'beta1',
  'beta2',
  'beta3',
  'betas',
  'eps1',
  'eps2',
  'eps',
  'clip_threshold',
  'weight_decay',
];

function tuple(value: unknown, length: number, field: string, where: string): number[] {
  if (!Array.isArray(value) || value.length !== length) {
    throw new InputError(
      `${where}: ${field} = ${JSON.stringify(value)} is invalid: it must be an array of ${length} numbers`,
    );
  }
  return value as number[];
}

/** Converts came_pytorch-named hyper-parameters (`betas`, `eps`, `clip_threshold`, `weight_decay`) to K* options. */
export function referenceToOptions(
  ref: CameReferenceHparams,
  where = 'cameFromReferenceHparams',
): Partial<CameHparams> {
  if (ref === null || typeof ref !== 'object') {
    throw new InputError(
      `${where}: expected an object such as {lr: 1e-4, betas: [0.9, 0.999, 0.9999]}, got ${String(ref)}`,
    );
  }
  for (const key of Object.keys(ref)) {
    if (!REFERENCE_KEYS.includes(key)) {
      throw new InputError(
        `${where}: unknown hyper-parameter '${key}': accepted are ${REFERENCE_KEYS.join(', ')}`,
      );
    }
  }
  let { beta1, beta2, beta3, eps1, eps2 } = ref;
  if (ref.betas !== undefined) {
    if (beta1 !== undefined || beta2 !== undefined || beta3 !== undefined) {
      throw new InputError(`${where}: give either betas or beta1/beta2/beta3, not both`);
    }
    [beta1, beta2, beta3] = tuple(ref.betas, 3, 'betas', where);
  }
  if (ref.eps !== undefined) {
    if (eps1 !== undefined || eps2 !== undefined) {
      throw new InputError(`${where}: give either eps or eps1/eps2, not both`);
    }
    [eps1, eps2] = tuple(ref.eps, 2, 'eps', where);
  }
  const options: { -readonly [K in keyof CameHparams]?: number } = {};
  if (ref.lr !== undefined) options.lr = ref.lr;
  if (beta1 !== undefined) options.beta1 = beta1;
  if (beta2 !== undefined) options.beta2 = beta2;
  if (beta3 !== undefined) options.beta3 = beta3;
  if (eps1 !== undefined) options.eps1 = eps1;
  if (eps2 !== undefined) options.eps2 = eps2;
  if (ref.clip_threshold !== undefined) options.clipThreshold = ref.clip_threshold;
  if (ref.weight_decay !== undefined) options.weightDecay = ref.weight_decay;
  return options;
}
