import { parseArgs } from 'node:util';
import { InputError } from '@kstar/core';
import { z } from 'zod';
import { TRAIN_OPTIONS, type TrainOption } from './config.ts';

export interface TrainFlags {
  config?: string;
  overrides: Record<string, unknown>;
  help: boolean;
}

/**
 * One flag of a subcommand, declared once: parseArgs' option, the value's parsing and check, and its help line are
 * derived from it, so the help lists the choices that are accepted and cannot drift from them.
 */
export interface FlagSpec {
  /** `int`/`number`: decimal only (`0x2`, `1e400`, ` 3` refused; `kstar train` leaves ranges to its schema); `string`; `boolean`. */
  readonly type: 'int' | 'number' | 'string' | 'boolean';
  /** The values it takes: listed in the help as `a|b|c` and checked (for `kstar train`, by the config schema). */
  readonly choices?: readonly string[];
  /** The value's placeholder in the help (`N`, `FILE`), where it has no choices. */
  readonly value?: string;
  readonly short?: string;
  /** `int`/`number` flags of a subcommand table: the smallest value accepted. */
  readonly min?: number;
  /** The help text; `\n` continues it on the next line, aligned. */
  readonly help: string;
}
export type FlagTable = Readonly<Record<string, FlagSpec>>;

/** A train option's flag: its type and choices read from the schema (optional and default unwrapped). */
function trainFlag(option: TrainOption): FlagSpec {
  let inner = option.schema;
  while (inner instanceof z.ZodOptional || inner instanceof z.ZodDefault) inner = inner.unwrap() as z.ZodType;
  const type =
    inner instanceof z.ZodBoolean
      ? 'boolean'
      : inner instanceof z.ZodNumber
        ? inner.format === 'safeint'
          ? 'int'
          : 'number'
        : 'string';
  const choices = option.choices ?? (inner instanceof z.ZodEnum ? (inner.options as string[]) : undefined);
  return {
    type,
    help: option.help,
    ...(choices ? { choices } : {}),
    ...(option.value ? { value: option.value } : {}),
  };
}

/** Each config field's flag: `--kebab-case` of the field, or the option's own `flag`. */
const TRAIN_FIELD_FLAGS = Object.entries(TRAIN_OPTIONS as Record<string, TrainOption>).map(
  ([field, option]) => ({
    field,
    flag: option.flag ?? field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`),
    spec: trainFlag(option),
  }),
);

/** `kstar train` (and `kstar plan`) flags, in help order: `--config`, one per config field, `--help`. */
export const TRAIN_FLAGS: FlagTable = {
  config: {
    type: 'string',
    short: 'c',
    value: 'FILE',
    help: 'JSON, .js or .ts config (fields as the long options below, camelCase); flags override it',
  },
  ...Object.fromEntries(TRAIN_FIELD_FLAGS.map((f) => [f.flag, f.spec])),
  help: { type: 'boolean', short: 'h', help: 'this help' },
};

/** The help lines of a flag table: `  --name VALUE|a|b   help`, continuations aligned. */
export function flagsHelp(table: FlagTable): string {
  const column = 29;
  return Object.entries(table)
    .map(([name, f]) => {
      const value = f.choices ? ` ${f.choices.join('|')}` : f.value ? ` ${f.value}` : '';
      const left = `  ${f.short ? `-${f.short}, ` : ''}--${name}${value}`;
      const [first, ...rest] = f.help.split('\n');
      const head = left.length + 2 > column ? `${left}  ${first}` : `${left.padEnd(column)}${first}`;
      return [head, ...rest.map((l) => `${' '.repeat(column)}${l}`)].join('\n');
    })
    .join('\n');
}

/** parseArgs' options of a flag table (numbers arrive as text and are parsed by `toNumber`). */
function parseArgsOptions(table: FlagTable): Record<string, { type: 'string' | 'boolean'; short?: string }> {
  return Object.fromEntries(
    Object.entries(table).map(([name, f]) => [
      name,
      { type: f.type === 'boolean' ? 'boolean' : 'string', ...(f.short ? { short: f.short } : {}) },
    ]),
  );
}

/**
 * A subcommand's flags parsed by its table: numbers parsed strictly, choices checked (naming the value and the
 * choices); an unknown or malformed flag is an InputError ending with `see '<command> --help'`.
 */
export function parseCommandFlags(
  argv: string[],
  table: FlagTable,
  command: string,
): Record<string, string | number | boolean | undefined> {
  const values = strictParse(argv, parseArgsOptions(table), `see '${command} --help'`);
  const out: Record<string, string | number | boolean | undefined> = {};
  for (const [name, f] of Object.entries(table)) {
    const v = values[name];
    if (typeof v !== 'string') {
      out[name] = v;
      continue;
    }
    if (f.choices && !f.choices.includes(v)) {
      throw new InputError(`unknown ${name} '${v}' for ${command}: use ${f.choices.join(', ')}`, 'E_FLAG');
    }
    out[name] = f.type === 'int' || f.type === 'number' ? checkedNumber(name, v, f) : v;
  }
  return out;
}

/** A subcommand's number flag, decimal, an integer for `int`, at least `min`: else what it must be. */
function checkedNumber(name: string, text: string, f: FlagSpec): number {
  const value = Number(text);
  const integer = f.type === 'int';
  const min = f.min ?? Number.NEGATIVE_INFINITY;
  if (
    !DECIMAL.test(text) ||
    !(integer ? Number.isSafeInteger(value) : Number.isFinite(value)) ||
    value < min
  ) {
    const want = `${integer ? 'an integer' : 'a number'}${f.min !== undefined ? ` ≥ ${f.min}` : ''}`;
    throw new InputError(`--${name} '${text}' is invalid: it must be ${want}`, 'E_FLAG');
  }
  return value;
}

/** A decimal number as a person writes it: `3`, `-0.5`, `.5`, `3e-4`; not `0x2`, `0b1`, `Infinity`, ` 3` or `1_000`. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Parse a number flag strictly: `--steps -3` reaches the schema as a number (which says what is wrong with the
 * value); `--steps abc`, `--steps 1e400` and `--steps 0x2` (which `Number` reads as 2) fail here.
 */
export function toNumber(flag: string, text: string, integer: boolean): number {
  const value = Number(text);
  if (!DECIMAL.test(text)) {
    throw new InputError(`flag --${flag}: '${text}' is not a decimal number`, 'E_FLAG');
  }
  if (!Number.isFinite(value)) {
    throw new InputError(`flag --${flag}: '${text}' is out of range (not a finite number)`, 'E_FLAG');
  }
  if (integer && !Number.isInteger(value)) {
    throw new InputError(`flag --${flag}: '${text}' is not an integer`, 'E_FLAG');
  }
  return value;
}

/** An optimizer option name: camelCase letters and digits (`beta2`, `weightDecay`); never `__proto__`. */
const OPTION_NAME = /^[A-Za-z][A-Za-z0-9]*$/;

const OPTION_LITERALS = new Map<string, boolean | null>([
  ['true', true],
  ['false', false],
  ['null', null],
]);

/** `--optimizer-option beta2=0.95,decoupled=true`: numbers (strictly), true, false or null by option name. */
function parseOptimizerOptions(text: string): Record<string, number | boolean | null> {
  // Own properties only (Object.fromEntries): `__proto__=1` is an option name for the plugin to refuse, not a prototype.
  const entries: Array<[string, number | boolean | null]> = [];
  for (const pair of text.split(',')) {
    const [key, raw, extra] = pair.split('=');
    if (!key || raw === undefined || extra !== undefined || !OPTION_NAME.test(key)) {
      throw new InputError(
        `flag --optimizer-option: '${pair}' is not name=value (e.g. --optimizer-option beta2=0.95)`,
        'E_FLAG',
      );
    }
    const literal = OPTION_LITERALS.get(raw);
    entries.push([key, literal !== undefined ? literal : toNumber(`optimizer-option ${key}`, raw, false)]);
  }
  return Object.fromEntries(entries);
}

/** `kstar train` flags. Flags override the config file's fields (choices are checked there, by the schema). */
export function parseTrainFlags(argv: string[]): TrainFlags {
  const v = strictParse(argv, parseArgsOptions(TRAIN_FLAGS), "see 'kstar train --help'");
  const overrides: Record<string, unknown> = {};
  for (const { field, flag, spec } of TRAIN_FIELD_FLAGS) {
    const value = v[flag];
    if (value === undefined) continue;
    if (typeof value !== 'string') overrides[field] = value;
    else if (field === 'optimizerOptions') overrides[field] = parseOptimizerOptions(value);
    else overrides[field] = spec.type === 'string' ? value : toNumber(flag, value, spec.type === 'int');
  }
  return {
    ...(typeof v.config === 'string' ? { config: v.config } : {}),
    overrides,
    help: v.help === true,
  };
}

export const TRAIN_HELP = `kstar train [options]

Trains a GPT on a corpus with the plugins the options name. With no options: the \`tiny\` preset on the embedded
Brown corpus with AdamW.

${flagsHelp(TRAIN_FLAGS)}
  --version                  print the version
`;

/**
 * `--steps -3` would read as a missing value followed by an option `-3`: negative numbers are joined to their flag
 * (`--steps=-3`) so that validation can say what is wrong with the value.
 */
function joinNegativeValues(argv: readonly string[], options: Record<string, { type: string }>): string[] {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (
      a.startsWith('--') &&
      !a.includes('=') &&
      Object.hasOwn(options, a.slice(2)) &&
      options[a.slice(2)]!.type === 'string' &&
      next !== undefined &&
      /^-(\d|\.\d)/.test(next)
    ) {
      args.push(`${a}=${next}`);
      i++;
    } else {
      args.push(a);
    }
  }
  return args;
}

/**
 * Parses a subcommand's `--name value` flags (and its boolean `--name` flags) strictly; an unknown or malformed flag
 * is an InputError whose message ends with `hint` (e.g. where to find the usage).
 */
export function parseFlags(
  argv: string[],
  strings: readonly string[],
  hint: string,
  booleans: readonly string[] = [],
): Record<string, string | boolean | undefined> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const f of strings) options[f] = { type: 'string' };
  for (const f of booleans) options[f] = { type: 'boolean' };
  return strictParse(argv, options, hint);
}

/** parseArgs in strict mode (no positionals, negative numbers joined to their flag); its error ends with `hint`. */
function strictParse(
  argv: string[],
  options: Record<string, { type: 'string' | 'boolean'; short?: string }>,
  hint: string,
): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args: joinNegativeValues(argv, options), options, strict: true }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (e) {
    throw new InputError(`${(e as Error).message.split('\n')[0]} (${hint})`, 'E_FLAG');
  }
}
