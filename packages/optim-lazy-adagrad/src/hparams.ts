import { InputError } from '@kstar/core';

/** Which rank-2 parameters keep row-lazy state (a row map + a slab of the rows seen so far). */
export type LazyRowsMode = 'embedding' | 'matrices' | 'off';

/**
 * Lazy Adagrad hyper-parameters (K* names). Defaults are `torch.optim.Adagrad`'s (PyTorch 2.11): lr 1e-2,
 * eps 1e-10 OUTSIDE the square root, initial accumulator 0.
 */
export interface LazyAdagradHparams {
  /** Learning rate, finite and > 0. Default 0.01. */
  readonly lr: number;
  /** Added to the denominator: √acc + eps (torch), or √(acc + eps) with `epsInsideSqrt` (Keras 3). Finite, > 0. Default 1e-10. */
  readonly eps: number;
  /** Starting value of every accumulator element (torch `initial_accumulator_value`, Keras 0.1). Finite, ≥ 0. Default 0. */
  readonly initialAccumulatorValue: number;
  /** Keras 3 placement `p ← p − lr·g/√(acc + eps)` instead of torch's `p ← p − lr·g/(√acc + eps)`. Default false. */
  readonly epsInsideSqrt: boolean;
  /**
   * Row-lazy state for rank-2 parameters: `'embedding'` (role `embedding` only, the default), `'matrices'` (every
   * rank-2 parameter) or `'off'`. Exact: a row whose gradient is all zero would not change under Adagrad anyway.
   */
  readonly lazyRows: LazyRowsMode;
  /**
   * Windowed mode: full-precision accumulators only for the `window` most recently updated parameter groups; the
   * others are stored 8-bit block-quantized (block 256, absmax) until their next update. `null` (default): off,
   * exactly Adagrad. An integer ≥ 1.
   */
  readonly window: number | null;
  /**
   * What the window's 8-bit codes store: `'sqrt'` (default) √acc, squared back on expansion; `'linear'` acc itself.
   * √acc halves the dynamic range (in decades) a 256-element block must cover.
   */
  readonly windowEncoding: 'sqrt' | 'linear' | 'dynamic';
}

/** Options of `lazyAdagrad()`: any subset of the hyper-parameters, plus the group key of the window. */
export type LazyAdagradOptions = Partial<LazyAdagradHparams> & {
  /**
   * The window's group key of a parameter, from its `ParamInfo.name`. Default: the name's prefix before the first
   * '.', which for the K* GPT is `wte`, `wpe`, `h0`, `h1`, …, `lnf` (one group per segment's block).
   */
  readonly groupOf?: (name: string) => string;
};

/** torch.optim.Adagrad's hyper-parameters, as the golden fixtures and `kstar replay` write them. */
export interface LazyAdagradReferenceHparams {
  readonly lr?: number;
  readonly eps?: number;
  readonly initial_accumulator_value?: number;
  /** Only 0: torch's lr decay schedule is rejected with an InputError (use a K* schedule on `learningRate`). */
  readonly lr_decay?: number;
  /** Only 0: torch's (coupled, L2) weight decay makes every row dense, which defeats the lazy state. */
  readonly weight_decay?: number;
  /** Only false. */
  readonly maximize?: boolean;
  /** torch implementation switches with the same arithmetic: accepted and ignored. */
  readonly foreach?: boolean | null;
  readonly fused?: boolean | null;
  readonly differentiable?: boolean;
}

export const LAZY_ADAGRAD_DEFAULTS: LazyAdagradHparams = Object.freeze({
  lr: 1e-2,
  eps: 1e-10,
  initialAccumulatorValue: 0,
  epsInsideSqrt: false,
  lazyRows: 'embedding',
  window: null,
  windowEncoding: 'dynamic',
});

type NumericField = 'lr' | 'eps' | 'initialAccumulatorValue';

const RULES: Record<NumericField, { ok: (x: number) => boolean; rule: string }> = {
  lr: { ok: (x) => Number.isFinite(x) && x > 0, rule: 'a finite number > 0 (torch default 0.01)' },
  eps: { ok: (x) => Number.isFinite(x) && x > 0, rule: 'a finite number > 0 (torch 1e-10, Keras 1e-7)' },
  initialAccumulatorValue: {
    ok: (x) => Number.isFinite(x) && x >= 0,
    rule: 'a finite number ≥ 0 (torch 0, Keras 0.1)',
  },
};

export const show = (value: unknown) =>
  typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));

export function checkHparam(field: NumericField, value: unknown, where = 'lazyAdagrad'): number {
  if (typeof value !== 'number' || !RULES[field].ok(value)) {
    throw new InputError(`${where}: ${field} = ${show(value)} is invalid: it must be ${RULES[field].rule}`);
  }
  return value;
}

/** The default group key: the name's prefix before the first '.' (`h3.attn.wqkv` → `h3`, `wte` → `wte`). */
export function defaultGroupOf(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? name : name.slice(0, dot);
}

/** Fills defaults and validates. Unknown option names are rejected. */
export function resolveHparams(
  options: LazyAdagradOptions = {},
  where = 'lazyAdagrad',
): LazyAdagradHparams & { groupOf: (name: string) => string } {
  if (options === null || typeof options !== 'object') {
    throw new InputError(`${where}: options must be an object such as {lr: 0.1}, got ${String(options)}`);
  }
  const known = [...Object.keys(LAZY_ADAGRAD_DEFAULTS), 'groupOf'];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new InputError(`${where}: unknown option '${key}': the options are ${known.join(', ')}`);
    }
  }
  const pick = <K extends keyof LazyAdagradHparams>(k: K): LazyAdagradHparams[K] =>
    (options[k] === undefined ? LAZY_ADAGRAD_DEFAULTS[k] : options[k]) as LazyAdagradHparams[K];
  const epsInsideSqrt = pick('epsInsideSqrt');
  if (typeof epsInsideSqrt !== 'boolean') {
    throw new InputError(
      `${where}: epsInsideSqrt = ${show(epsInsideSqrt)} is invalid: it must be true or false`,
    );
  }
  const lazyRows = pick('lazyRows');
  if (lazyRows !== 'embedding' && lazyRows !== 'matrices' && lazyRows !== 'off') {
    throw new InputError(
      `${where}: lazyRows = ${show(lazyRows)} is invalid: it must be 'embedding', 'matrices' or 'off'`,
    );
  }
  const window = pick('window');
  if (window !== null && !(Number.isInteger(window) && window >= 1)) {
    throw new InputError(
      `${where}: window = ${show(window)} is invalid: it must be null (off) or an integer ≥ 1 (groups kept in float32)`,
    );
  }
  const windowEncoding = pick('windowEncoding');
  if (windowEncoding !== 'sqrt' && windowEncoding !== 'linear' && windowEncoding !== 'dynamic') {
    throw new InputError(
      `${where}: windowEncoding = ${show(windowEncoding)} is invalid: it must be 'sqrt', 'linear' or 'dynamic'`,
    );
  }
  const groupOf = options.groupOf ?? defaultGroupOf;
  if (typeof groupOf !== 'function') {
    throw new InputError(`${where}: groupOf must be a function (name) => group key, got ${show(groupOf)}`);
  }
  return Object.freeze({
    lr: checkHparam('lr', pick('lr'), where),
    eps: checkHparam('eps', pick('eps'), where),
    initialAccumulatorValue: checkHparam('initialAccumulatorValue', pick('initialAccumulatorValue'), where),
    epsInsideSqrt,
    lazyRows,
    window,
    windowEncoding,
    groupOf,
  });
}

const REFERENCE_KEYS = [
  'lr',
  'eps',
  'initial_accumulator_value',
  'lr_decay',
  'weight_decay',
  'maximize',
  'foreach',
  'fused',
  'differentiable',
];

/** torch.optim.Adagrad names → K* options. Rejects the features Lazy Adagrad does not implement, naming them. */
export function referenceToOptions(
  ref: LazyAdagradReferenceHparams,
  where = 'lazyAdagradFromReferenceHparams',
): LazyAdagradOptions {
  if (ref === null || typeof ref !== 'object') {
    throw new InputError(`${where}: expected an object such as {lr: 0.1, eps: 1e-10}, got ${String(ref)}`);
  }
  for (const key of Object.keys(ref)) {
    if (!REFERENCE_KEYS.includes(key)) {
      throw new InputError(
        `${where}: unknown hyper-parameter '${key}': accepted are ${REFERENCE_KEYS.join(', ')}`,
      );
    }
  }
  if ((ref.lr_decay ?? 0) !== 0) {
    throw new InputError(
      `${where}: lr_decay = ${show(ref.lr_decay)} is not supported: it must be 0 (schedule learningRate instead)`,
    );
  }
  if ((ref.weight_decay ?? 0) !== 0) {
    throw new InputError(
      `${where}: weight_decay = ${show(ref.weight_decay)} is not supported: it must be 0 (L2 decay touches every row, which defeats the lazy state)`,
    );
  }
  if ((ref.maximize ?? false) !== false) {
    throw new InputError(`${where}: maximize = ${show(ref.maximize)} is not supported: it must be false`);
  }
  const options: { -readonly [K in keyof LazyAdagradHparams]?: LazyAdagradHparams[K] } = {};
  if (ref.lr !== undefined) options.lr = ref.lr;
  if (ref.eps !== undefined) options.eps = ref.eps;
  if (ref.initial_accumulator_value !== undefined)
    options.initialAccumulatorValue = ref.initial_accumulator_value;
  return options;
}
