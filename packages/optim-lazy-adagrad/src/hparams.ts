import {
  defineHparams,
  finiteNonNegative,
  finitePositive,
  InputError,
  isBoolean,
  numberWhere,
  orNull,
  showValue,
} from '@kstar/core';

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

const oneOf =
  (...values: readonly string[]) =>
  (x: unknown) =>
    values.includes(x as string);

/**
 * Lazy Adagrad's hyper-parameters declared once: defaults, checks, torch.optim.Adagrad's names. The reference-only
 * features Lazy Adagrad does not implement are accepted only at their neutral value; torch's implementation
 * switches (same arithmetic) are accepted and ignored.
 */
export const LAZY_ADAGRAD_HPARAMS = defineHparams<LazyAdagradHparams>({
  name: 'lazyAdagrad',
  example: 'such as {lr: 0.1}',
  fields: {
    lr: { default: 1e-2, ok: finitePositive, rule: 'a finite number > 0 (torch default 0.01)', ref: 'lr' },
    eps: {
      default: 1e-10,
      ok: finitePositive,
      rule: 'a finite number > 0 (torch 1e-10, Keras 1e-7)',
      ref: 'eps',
    },
    initialAccumulatorValue: {
      default: 0,
      ok: finiteNonNegative,
      rule: 'a finite number ≥ 0 (torch 0, Keras 0.1)',
      ref: 'initial_accumulator_value',
    },
    epsInsideSqrt: { default: false, ok: isBoolean, rule: 'true or false' },
    lazyRows: {
      default: 'embedding',
      ok: oneOf('embedding', 'matrices', 'off'),
      rule: "'embedding', 'matrices' or 'off'",
    },
    window: {
      default: null,
      ok: orNull(numberWhere((x) => Number.isInteger(x) && x >= 1)),
      rule: 'null (off) or an integer ≥ 1 (groups kept in float32)',
    },
    windowEncoding: {
      default: 'dynamic',
      ok: oneOf('sqrt', 'linear', 'dynamic'),
      rule: "'sqrt', 'linear' or 'dynamic'",
    },
  },
  extraOptions: ['groupOf'],
  reference: {
    name: 'lazyAdagradFromReferenceHparams',
    example: '{lr: 0.1, eps: 1e-10}',
    ignored: {
      lr_decay: {
        ok: (x) => x === 0,
        rule: '0: torch’s lr decay is not supported (schedule learningRate instead)',
      },
      weight_decay: {
        ok: (x) => x === 0,
        rule: '0: weight decay is not supported (L2 decay touches every row, which defeats the lazy state)',
      },
      maximize: { ok: (x) => x === false, rule: 'false (maximize is not supported)' },
      foreach: { ok: orNull(isBoolean), rule: 'true, false or null' },
      fused: { ok: orNull(isBoolean), rule: 'true, false or null' },
      differentiable: { ok: isBoolean, rule: 'true or false' },
    },
  },
});

export const LAZY_ADAGRAD_DEFAULTS: LazyAdagradHparams = LAZY_ADAGRAD_HPARAMS.defaults;

/** The default group key: the name's prefix before the first '.' (`h3.attn.wqkv` → `h3`, `wte` → `wte`). */
export function defaultGroupOf(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? name : name.slice(0, dot);
}

/** Fills defaults and validates; `groupOf` (not a hyper-parameter) defaults to `defaultGroupOf`. */
export function resolveHparams(
  options: LazyAdagradOptions = {},
  where = 'lazyAdagrad',
): LazyAdagradHparams & { groupOf: (name: string) => string } {
  const hparams = LAZY_ADAGRAD_HPARAMS.resolve(options, where);
  const groupOf = options.groupOf ?? defaultGroupOf;
  if (typeof groupOf !== 'function') {
    throw new InputError(
      `${where}: groupOf must be a function (name) => group key, got ${showValue(groupOf)}`,
    );
  }
  return Object.freeze({ ...hparams, groupOf });
}
