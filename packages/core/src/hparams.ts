import { InputError } from './errors.ts';

/**
 * One hyper-parameter of an optimizer: its default (or why it has none), the check and the rule the error states,
 * and the name the reference implementation (golden fixtures, `kstar replay`) spells it with.
 */
export interface HparamField<T> {
  /** The value when the option is not given. */
  readonly default: T;
  /** Whether a value is valid; `rule` says which are, in the error `<field> = <value> is invalid: it must be <rule>`. */
  readonly ok: (value: unknown) => boolean;
  readonly rule: string;
  /** The reference implementation's name (`weight_decay`); absent: not accepted by `fromReference`. */
  readonly ref?: string;
  /** Maps a valid value to the stored one (AdaLomo: `lossScale` 0 means off, stored as null). */
  readonly normalize?: (value: T) => T;
}

/** A hyper-parameter without a default (came_pytorch's `lr`): leaving it out throws `<field> is required <why>`. */
export interface RequiredHparamField<T> extends Omit<HparamField<T>, 'default'> {
  /** The rest of the error after `<field> is required `, e.g. `(… has no default): pass e.g. {lr: 3e-4}`. */
  readonly required: string;
}

/** A reference name that packs several fields into one array: torch's `betas=(β1, β2)`, HF's `eps=(ε1, ε2)`. */
export interface HparamPair<H> {
  readonly key: string;
  readonly fields: readonly (keyof H & string)[];
  /** What the array must look like, for the error: `[beta1, beta2]`. */
  readonly shape: string;
}

/** A reference-only name that is checked and then dropped (a switch with the same arithmetic, a neutral value). */
export interface IgnoredReferenceKey {
  readonly ok: (value: unknown) => boolean;
  readonly rule: string;
}

export interface HparamsSpec<H, R extends keyof H> {
  /** The `where` of errors (`lion: lr = -1 is invalid: …`). */
  readonly name: string;
  /** Completes `options must be an object <example>` (`such as {lr: 1e-4}`). */
  readonly example: string;
  /** Every hyper-parameter, in the order they are checked and listed. */
  readonly fields: { readonly [K in keyof H]-?: K extends R ? RequiredHparamField<H[K]> : HparamField<H[K]> };
  /** Option names the caller handles itself (not hyper-parameters): accepted, not resolved. */
  readonly extraOptions?: readonly string[];
  /** Checks between fields, after each field passed its own (Adafactor: `lr` with `relativeStep`). */
  readonly crossCheck?: (resolved: Readonly<H>, where: string) => void;
  readonly reference?: {
    /** The `where` of conversion errors (`lionFromReferenceHparams`). */
    readonly name: string;
    /** Completes `expected an object such as <example>`. */
    readonly example: string;
    readonly pairs?: readonly HparamPair<H>[];
    readonly ignored?: Readonly<Record<string, IgnoredReferenceKey>>;
  };
}

/** What `defineHparams` gives: the defaults, the validator and the reference conversion of one optimizer. */
export interface HparamsSchema<H, R extends keyof H = never> {
  readonly name: string;
  readonly fields: HparamsSpec<H, R>['fields'];
  /** Every default (required fields have none), frozen. */
  readonly defaults: Readonly<Omit<H, R>>;
  /** The option names `resolve` accepts, in order (fields, then extra options). */
  readonly optionNames: readonly string[];
  /** The names `fromReference` accepts, in order. */
  readonly referenceNames: readonly string[];
  /** Checks one value (a schedule's new `lr`); throws the field's `InputError`. */
  check<K extends keyof H & string>(field: K, value: unknown, where?: string): H[K];
  /** Fills defaults and checks every field; unknown option names (own properties only) are refused. */
  resolve(options: unknown, where?: string): Readonly<H>;
  /** Reference names → K* options (not yet checked: pass them to `resolve`). */
  fromReference(ref: unknown, where?: string): Partial<H>;
}

/** A value as errors show it: numbers plainly (`NaN`, `-0.1`), anything else as JSON (`"1e-3"`, `[0.9]`). */
export function showValue(value: unknown): string {
  return typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
}

export const isBoolean = (x: unknown): x is boolean => typeof x === 'boolean';

/** `ok` for numbers: false for anything that is not a number, else `test(x)`. */
export const numberWhere =
  (test: (x: number) => boolean) =>
  (x: unknown): boolean =>
    typeof x === 'number' && test(x);

/** `ok`: a finite number > 0 (learning rates, epsilons). */
export const finitePositive = numberWhere((x) => Number.isFinite(x) && x > 0);

/** `ok`: a finite number ≥ 0. */
export const finiteNonNegative = numberWhere((x) => Number.isFinite(x) && x >= 0);

/** `ok`: in [0, 1) (the decays of moment EMAs). */
export const unitInterval = numberWhere((x) => x >= 0 && x < 1);

/** The decoupled weight decay λ the optimizers declare: a finite number ≥ 0 (0: off), torch's `weight_decay`. */
export function weightDecayField(
  defaultValue: number,
  rule = 'a finite number ≥ 0 (0 turns decay off)',
): HparamField<number> {
  return { default: defaultValue, ok: finiteNonNegative, rule, ref: 'weight_decay' };
}

/** torch's two moment decays as references give them: `beta1`/`beta2`, or `betas=(β1, β2)`. */
export interface BetasReference {
  readonly beta1?: number;
  readonly beta2?: number;
  /** torch's `betas=(β1, β2)`; an alternative to `beta1`/`beta2`. */
  readonly betas?: readonly [number, number];
}

/** The `reference.pairs` entry that reads `betas=(β1, β2)` into `beta1` and `beta2`. */
export const BETAS_PAIR = { key: 'betas', fields: ['beta1', 'beta2'], shape: '[beta1, beta2]' } as const;

/** `ok` that also accepts null (an optional feature that is off). */
export const orNull =
  (ok: (x: unknown) => boolean) =>
  (x: unknown): boolean =>
    x === null || ok(x);

const isRecord = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object';

/**
 * Declares an optimizer's hyper-parameters once; the result gives its defaults, its validator (one error wording:
 * `<where>: <field> = <value> is invalid: it must be <rule>`) and the conversion of the reference implementation's
 * names for the golden replays and `kstar replay`. `R` names the fields without a default.
 */
export function defineHparams<H extends object, R extends keyof H = never>(
  spec: HparamsSpec<H, R>,
): HparamsSchema<H, R> {
  type Field = keyof H & string;
  const fields = spec.fields as Readonly<
    Record<Field, Partial<HparamField<unknown>> & Partial<RequiredHparamField<unknown>>>
  >;
  const names = Object.keys(fields) as Field[];
  const optionNames = [...names, ...(spec.extraOptions ?? [])];
  const defaults: Record<string, unknown> = {};
  for (const f of names) if (!('required' in fields[f])) defaults[f] = fields[f].default;

  const ref = spec.reference;
  const refToField = new Map<string, Field>();
  const referenceNames: string[] = [];
  for (const f of names) {
    const r = fields[f].ref;
    if (r === undefined) continue;
    refToField.set(r, f);
    referenceNames.push(r);
    // A pair is listed after its last field's name: `beta1, beta2, betas`.
    for (const pair of ref?.pairs ?? []) if (pair.fields.at(-1) === f) referenceNames.push(pair.key);
  }
  referenceNames.push(...Object.keys(ref?.ignored ?? {}));

  function check<K extends Field>(field: K, value: unknown, where = spec.name): H[K] {
    const f = fields[field];
    if (!f.ok!(value)) {
      throw new InputError(`${where}: ${field} = ${showValue(value)} is invalid: it must be ${f.rule}`);
    }
    return (f.normalize ? f.normalize(value) : value) as H[K];
  }

  function resolve(options: unknown, where = spec.name): Readonly<H> {
    if (!isRecord(options)) {
      throw new InputError(`${where}: options must be an object ${spec.example}, got ${String(options)}`);
    }
    for (const key of Object.keys(options)) {
      if (!optionNames.includes(key)) {
        throw new InputError(`${where}: unknown option '${key}': the options are ${optionNames.join(', ')}`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const f of names) {
      const given = options[f];
      const required = fields[f].required;
      if (given === undefined && required !== undefined) {
        throw new InputError(`${where}: ${f} is required ${required}`);
      }
      out[f] = check(f, given === undefined ? defaults[f] : given, where);
    }
    const resolved = Object.freeze(out) as Readonly<H>;
    spec.crossCheck?.(resolved, where);
    return resolved;
  }

  function fromReference(given: unknown, where = ref?.name ?? spec.name): Partial<H> {
    if (!isRecord(given)) {
      throw new InputError(
        `${where}: expected an object such as ${ref?.example ?? '{}'}, got ${String(given)}`,
      );
    }
    for (const key of Object.keys(given)) {
      if (!referenceNames.includes(key)) {
        throw new InputError(
          `${where}: unknown hyper-parameter '${key}': accepted are ${referenceNames.join(', ')}`,
        );
      }
    }
    for (const [key, rule] of Object.entries(ref?.ignored ?? {})) {
      if (given[key] !== undefined && !rule.ok(given[key])) {
        throw new InputError(
          `${where}: ${key} = ${showValue(given[key])} is invalid: it must be ${rule.rule}`,
        );
      }
    }
    const out: Record<string, unknown> = {};
    for (const [r, f] of refToField) if (given[r] !== undefined) out[f] = given[r];
    for (const pair of ref?.pairs ?? []) {
      const value = given[pair.key];
      if (value === undefined) continue;
      if (!Array.isArray(value) || value.length !== pair.fields.length) {
        throw new InputError(
          `${where}: ${pair.key} = ${showValue(value)} is invalid: it must be ${pair.shape}`,
        );
      }
      const spelled = pair.fields.map((f) => fields[f].ref ?? f);
      if (spelled.some((r) => given[r] !== undefined)) {
        throw new InputError(`${where}: give either ${pair.key} or ${spelled.join('/')}, not both`);
      }
      pair.fields.forEach((f, i) => {
        out[f] = value[i];
      });
    }
    return out as Partial<H>;
  }

  return Object.freeze({
    name: spec.name,
    fields: spec.fields,
    defaults: Object.freeze(defaults) as Readonly<Omit<H, R>>,
    optionNames,
    referenceNames,
    check,
    resolve,
    fromReference,
  });
}
