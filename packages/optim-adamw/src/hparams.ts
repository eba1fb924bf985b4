import { InputError } from '@kstar/core';

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
export interface AdamWReferenceHparams {
  readonly lr?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  /** torch's `betas=(β1, β2)`; an alternative to `beta1`/`beta2`. */
  readonly betas?: readonly [number, number];
  readonly eps?: number;
  readonly weight_decay?: number;
}

export const ADAMW_DEFAULTS: AdamWHparams = Object.freeze({
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
});

const RULES: Record<keyof AdamWHparams, { ok: (x: number) => boolean; rule: string }> = {
  lr: { ok: (x) => Number.isFinite(x) && x > 0, rule: 'a finite number > 0 (typically 1e-4 to 1e-2)' },
  beta1: { ok: (x) => x >= 0 && x < 1, rule: 'in [0, 1) (typically 0.9)' },
  beta2: { ok: (x) => x >= 0 && x < 1, rule: 'in [0, 1) (typically 0.95 to 0.999)' },
  eps: { ok: (x) => Number.isFinite(x) && x > 0, rule: 'a finite number > 0 (typically 1e-8)' },
  weightDecay: { ok: (x) => Number.isFinite(x) && x >= 0, rule: 'a finite number ≥ 0 (0 turns decay off)' },
};

/** Checks one hyper-parameter; throws `InputError` naming the value and the valid range. */
export function checkHparam(field: keyof AdamWHparams, value: unknown, where = 'adamw'): number {
  if (typeof value !== 'number' || !RULES[field].ok(value)) {
    const shown = typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
    throw new InputError(`${where}: ${field} = ${shown} is invalid: it must be ${RULES[field].rule}`);
  }
  return value;
}

/** Fills defaults and validates. Unknown option names are rejected (a typo would otherwise be ignored). */
export function resolveAdamWHparams(options: AdamWOptions = {}, where = 'adamw'): AdamWHparams {
  if (options === null || typeof options !== 'object') {
    throw new InputError(`${where}: options must be an object such as {lr: 1e-3}, got ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(ADAMW_DEFAULTS, key)) {
      throw new InputError(
        `${where}: unknown option '${key}': the options are ${Object.keys(ADAMW_DEFAULTS).join(', ')}`,
      );
    }
  }
  const out = {} as Record<keyof AdamWHparams, number>;
  for (const field of Object.keys(ADAMW_DEFAULTS) as (keyof AdamWHparams)[]) {
    const given = options[field];
    out[field] = checkHparam(field, given === undefined ? ADAMW_DEFAULTS[field] : given, where);
  }
  return Object.freeze(out);
}

const REFERENCE_KEYS = ['lr', 'beta1', 'beta2', 'betas', 'eps', 'weight_decay'];

/** Converts torch-named hyper-parameters (`weight_decay`, `betas`) to K* options. */
export function referenceToOptions(
  ref: AdamWReferenceHparams,
  where = 'adamwFromReferenceHparams',
): AdamWOptions {
  if (ref === null || typeof ref !== 'object') {
    throw new InputError(
      `${where}: expected an object such as {lr: 0.01, weight_decay: 0.01}, got ${String(ref)}`,
    );
  }
  for (const key of Object.keys(ref)) {
    if (!REFERENCE_KEYS.includes(key)) {
      throw new InputError(
        `${where}: unknown hyper-parameter '${key}': accepted are ${REFERENCE_KEYS.join(', ')}`,
      );
    }
  }
  let { beta1, beta2 } = ref;
  if (ref.betas !== undefined) {
    if (!Array.isArray(ref.betas) || ref.betas.length !== 2) {
      throw new InputError(
        `${where}: betas = ${JSON.stringify(ref.betas)} is invalid: it must be [beta1, beta2]`,
      );
    }
    if (beta1 !== undefined || beta2 !== undefined) {
      throw new InputError(`${where}: give either betas or beta1/beta2, not both`);
    }
    [beta1, beta2] = ref.betas;
  }
  const options: { -readonly [K in keyof AdamWHparams]?: number } = {};
  if (ref.lr !== undefined) options.lr = ref.lr;
  if (beta1 !== undefined) options.beta1 = beta1;
  if (beta2 !== undefined) options.beta2 = beta2;
  if (ref.eps !== undefined) options.eps = ref.eps;
  if (ref.weight_decay !== undefined) options.weightDecay = ref.weight_decay;
  return options;
}
