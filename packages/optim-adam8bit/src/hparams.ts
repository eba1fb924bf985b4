import { InputError } from '@kstar/core';

/** 8-bit Adam hyper-parameters (K* names). Defaults are `bnb.optim.Adam8bit`'s (bitsandbytes 95f9af3). */
export interface Adam8bitHparams {
  /** Learning rate. Finite, > 0. Default 1e-3. */
  readonly lr: number;
  /** First-moment decay, in [0, 1). Default 0.9. */
  readonly beta1: number;
  /** Second-moment decay, in [0, 1). Default 0.999. */
  readonly beta2: number;
  /** Added to √v̂. Finite, > 0. Default 1e-8. */
  readonly eps: number;
  /** Decoupled weight decay λ: p ← p·(1 − lr·λ), applied BEFORE the Adam update (torch AdamW order). ≥ 0. Default 0. */
  readonly weightDecay: number;
  /** Elements per absmax block. Integer in [1, 1048576]. Default 256 (bitsandbytes since 0.44). */
  readonly blockSize: number;
  /** Tensors with fewer elements keep float32 m and v (bitsandbytes' min_8bit_size). Integer ≥ 0. Default 4096. */
  readonly minQuantizedSize: number;
  /** Keep float32 state for parameters of role 'embedding' (HF Trainer's / StableEmbedding's rule). Default false. */
  readonly float32Embeddings: boolean;
}

export type Adam8bitOptions = Partial<Adam8bitHparams>;

/** Hyper-parameters under torch/bitsandbytes names, as the golden fixtures and `kstar replay` write them. */
export interface Adam8bitReferenceHparams {
  readonly lr?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly betas?: readonly [number, number];
  readonly eps?: number;
  readonly weight_decay?: number;
  readonly min_8bit_size?: number;
  readonly block_size?: number;
  /** torch's amsgrad: only false is accepted (bitsandbytes rejects it too). */
  readonly amsgrad?: boolean;
}

export const ADAM8BIT_DEFAULTS: Adam8bitHparams = Object.freeze({
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
  blockSize: 256,
  minQuantizedSize: 4096,
  float32Embeddings: false,
});

type NumericField = Exclude<keyof Adam8bitHparams, 'float32Embeddings'>;

const RULES: Record<NumericField, { ok: (x: number) => boolean; rule: string }> = {
  lr: { ok: (x) => Number.isFinite(x) && x > 0, rule: 'a finite number > 0 (e.g. 1e-3)' },
  beta1: { ok: (x) => x >= 0 && x < 1, rule: 'in [0, 1) (typically 0.9)' },
  beta2: { ok: (x) => x >= 0 && x < 1, rule: 'in [0, 1) (typically 0.999)' },
  eps: { ok: (x) => Number.isFinite(x) && x > 0, rule: 'a finite number > 0 (typically 1e-8)' },
  weightDecay: { ok: (x) => Number.isFinite(x) && x >= 0, rule: 'a finite number ≥ 0 (0 turns decay off)' },
  blockSize: {
    ok: (x) => Number.isInteger(x) && x >= 1 && x <= 1 << 20,
    rule: 'an integer in [1, 1048576] (bitsandbytes uses 256)',
  },
  minQuantizedSize: {
    ok: (x) => Number.isInteger(x) && x >= 0,
    rule: 'an integer ≥ 0 (bitsandbytes uses 4096; 0 quantizes every tensor)',
  },
};

const show = (value: unknown) =>
  typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));

export function checkHparam(field: NumericField, value: unknown, where = 'adam8bit'): number {
  if (typeof value !== 'number' || !RULES[field].ok(value)) {
    throw new InputError(`${where}: ${field} = ${show(value)} is invalid: it must be ${RULES[field].rule}`);
  }
  return value;
}

/** Fills defaults and validates; unknown option names are rejected. */
export function resolveAdam8bitHparams(options: Adam8bitOptions = {}, where = 'adam8bit'): Adam8bitHparams {
  if (options === null || typeof options !== 'object') {
    throw new InputError(`${where}: options must be an object such as {lr: 1e-3}, got ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(ADAM8BIT_DEFAULTS, key)) {
      throw new InputError(
        `${where}: unknown option '${key}': the options are ${Object.keys(ADAM8BIT_DEFAULTS).join(', ')}`,
      );
    }
  }
  const pick = <K extends keyof Adam8bitHparams>(k: K): Adam8bitHparams[K] =>
    (options[k] === undefined ? ADAM8BIT_DEFAULTS[k] : options[k]) as Adam8bitHparams[K];
  const emb = pick('float32Embeddings');
  if (typeof emb !== 'boolean') {
    throw new InputError(`${where}: float32Embeddings = ${show(emb)} is invalid: it must be true or false`);
  }
  const out = { float32Embeddings: emb } as { -readonly [K in keyof Adam8bitHparams]: Adam8bitHparams[K] };
  for (const k of Object.keys(RULES) as NumericField[]) out[k] = checkHparam(k, pick(k), where);
  return Object.freeze(out);
}

const REFERENCE_KEYS = [
  'lr',
  'beta1',
  'beta2',
  'betas',
  'eps',
  'weight_decay',
  'min_8bit_size',
  'block_size',
  'amsgrad',
];

/** torch/bitsandbytes names (`weight_decay`, `betas`, `min_8bit_size`, …) → K* options. */
export function referenceToOptions(
  ref: Adam8bitReferenceHparams,
  where = 'adam8bitFromReferenceHparams',
): Adam8bitOptions {
  if (ref === null || typeof ref !== 'object') {
    throw new InputError(
      `${where}: expected an object such as {lr: 1e-3, weight_decay: 0.01}, got ${String(ref)}`,
    );
  }
  for (const key of Object.keys(ref)) {
    if (!REFERENCE_KEYS.includes(key)) {
      throw new InputError(
        `${where}: unknown hyper-parameter '${key}': accepted are ${REFERENCE_KEYS.join(', ')}`,
      );
    }
  }
  if (ref.amsgrad !== undefined && ref.amsgrad !== false) {
    throw new InputError(
      `${where}: amsgrad = ${show(ref.amsgrad)} is invalid: 8-bit Adam supports only false`,
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
  const o: { -readonly [K in keyof Adam8bitHparams]?: Adam8bitHparams[K] } = {};
  if (ref.lr !== undefined) o.lr = ref.lr;
  if (beta1 !== undefined) o.beta1 = beta1;
  if (beta2 !== undefined) o.beta2 = beta2;
  if (ref.eps !== undefined) o.eps = ref.eps;
  if (ref.weight_decay !== undefined) o.weightDecay = ref.weight_decay;
  if (ref.min_8bit_size !== undefined) o.minQuantizedSize = ref.min_8bit_size;
  if (ref.block_size !== undefined) o.blockSize = ref.block_size;
  return o;
}
