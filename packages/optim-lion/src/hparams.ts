import { InputError } from '@kstar/core';

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
export interface LionReferenceHparams {
  readonly lr?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  /** lion_pytorch's `betas=(β1, β2)`; an alternative to `beta1`/`beta2`. */
  readonly betas?: readonly [number, number];
  readonly weight_decay?: number;
  readonly decoupled_weight_decay?: boolean;
  /** lion_pytorch's Triton kernel switch: the same arithmetic, accepted and ignored. */
  readonly use_triton?: boolean;
}

export const LION_DEFAULTS: LionHparams = Object.freeze({
  lr: 1e-4,
  beta1: 0.9,
  beta2: 0.99,
  weightDecay: 0,
  decoupledWeightDecay: false,
});

type NumericField = Exclude<keyof LionHparams, 'decoupledWeightDecay'>;

const RULES: Record<NumericField, { ok: (x: number) => boolean; rule: string }> = {
  lr: {
    ok: (x) => Number.isFinite(x) && x > 0,
    rule: 'a finite number > 0 (typically 3–10× smaller than AdamW’s, e.g. 1e-4 to 1e-3)',
  },
  // lion_pytorch asserts 0 ≤ β ≤ 1 for both (β1 = 0 is SignSGD on g, β2 = 1 freezes the momentum).
  beta1: { ok: (x) => x >= 0 && x <= 1, rule: 'in [0, 1] (typically 0.9 or 0.95)' },
  beta2: { ok: (x) => x >= 0 && x <= 1, rule: 'in [0, 1] (typically 0.98 or 0.99)' },
  weightDecay: {
    ok: (x) => Number.isFinite(x) && x >= 0,
    rule: 'a finite number ≥ 0 (0 turns decay off; typically 3–10× AdamW’s)',
  },
};

const show = (value: unknown) =>
  typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));

/** Checks one numeric hyper-parameter; throws `InputError` naming the value and the valid range. */
export function checkHparam(field: NumericField, value: unknown, where = 'lion'): number {
  if (typeof value !== 'number' || !RULES[field].ok(value)) {
    throw new InputError(`${where}: ${field} = ${show(value)} is invalid: it must be ${RULES[field].rule}`);
  }
  return value;
}

/** Fills defaults and validates. Unknown option names are rejected (a typo would otherwise be ignored). */
export function resolveLionHparams(options: LionOptions = {}, where = 'lion'): LionHparams {
  if (options === null || typeof options !== 'object') {
    throw new InputError(`${where}: options must be an object such as {lr: 1e-4}, got ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(LION_DEFAULTS, key)) {
      throw new InputError(
        `${where}: unknown option '${key}': the options are ${Object.keys(LION_DEFAULTS).join(', ')}`,
      );
    }
  }
  const pick = <K extends keyof LionHparams>(k: K): LionHparams[K] =>
    (options[k] === undefined ? LION_DEFAULTS[k] : options[k]) as LionHparams[K];
  const decoupled = pick('decoupledWeightDecay');
  if (typeof decoupled !== 'boolean') {
    throw new InputError(
      `${where}: decoupledWeightDecay = ${show(decoupled)} is invalid: it must be true or false`,
    );
  }
  return Object.freeze({
    lr: checkHparam('lr', pick('lr'), where),
    beta1: checkHparam('beta1', pick('beta1'), where),
    beta2: checkHparam('beta2', pick('beta2'), where),
    weightDecay: checkHparam('weightDecay', pick('weightDecay'), where),
    decoupledWeightDecay: decoupled,
  });
}

const REFERENCE_KEYS = [
  'lr',
  'beta1',
  'beta2',
  'betas',
  'weight_decay',
  'decoupled_weight_decay',
  'use_triton',
];

/** Converts lion_pytorch-named hyper-parameters (`weight_decay`, `betas`, `decoupled_weight_decay`) to K* options. */
export function referenceToOptions(
  ref: LionReferenceHparams,
  where = 'lionFromReferenceHparams',
): LionOptions {
  if (ref === null || typeof ref !== 'object') {
    throw new InputError(
      `${where}: expected an object such as {lr: 1e-4, weight_decay: 0.1}, got ${String(ref)}`,
    );
  }
  for (const key of Object.keys(ref)) {
    if (!REFERENCE_KEYS.includes(key)) {
      throw new InputError(
        `${where}: unknown hyper-parameter '${key}': accepted are ${REFERENCE_KEYS.join(', ')}`,
      );
    }
  }
  if (ref.use_triton !== undefined && typeof ref.use_triton !== 'boolean') {
    throw new InputError(
      `${where}: use_triton = ${show(ref.use_triton)} is invalid: it must be true or false`,
    );
  }
  let { beta1, beta2 } = ref;
  if (ref.betas !== undefined) {
    if (!Array.isArray(ref.betas) || ref.betas.length !== 2) {
      throw new InputError(`${where}: betas = ${show(ref.betas)} is invalid: it must be [beta1, beta2]`);
    }
    if (beta1 !== undefined || beta2 !== undefined) {
      throw new InputError(`${where}: give either betas or beta1/beta2, not both`);
    }
    [beta1, beta2] = ref.betas;
  }
  const options: { -readonly [K in keyof LionHparams]?: LionHparams[K] } = {};
  if (ref.lr !== undefined) options.lr = ref.lr;
  if (beta1 !== undefined) options.beta1 = beta1;
  if (beta2 !== undefined) options.beta2 = beta2;
  if (ref.weight_decay !== undefined) options.weightDecay = ref.weight_decay;
  if (ref.decoupled_weight_decay !== undefined) options.decoupledWeightDecay = ref.decoupled_weight_decay;
  return options;
}
