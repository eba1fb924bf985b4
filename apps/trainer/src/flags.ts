import { parseArgs } from 'node:util';
import { InputError } from '@kstar/core';
import {
  BACKEND_NAMES,
  MASTER_WEIGHTS_NAMES,
  MATMUL_PRECISION_NAMES,
  MODE_NAMES,
  PRECISION_NAMES,
  PRESET_NAMES,
  TOKENIZER_NAMES,
} from './config.ts';
import { OPTIMIZERS } from './optimizers.ts';
import { SHARDING_NAMES } from './sharding.ts';

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
  /** `int`/`number`: parsed strictly (`toNumber`: `0x2`, `1e400`, ` 3` refused); `string`; `boolean` (no value). */
  readonly type: 'int' | 'number' | 'string' | 'boolean';
  /** The values it takes: listed in the help as `a|b|c` and checked (for `kstar train`, by the config schema). */
  readonly choices?: readonly string[];
  /** The value's placeholder in the help (`N`, `FILE`), where it has no choices. */
  readonly value?: string;
  readonly short?: string;
  /** The help text; `\n` continues it on the next line, aligned. */
  readonly help: string;
}
export type FlagTable = Readonly<Record<string, FlagSpec>>;

const OPTIMIZER_NAMES = Object.keys(OPTIMIZERS);

/** `kstar train` (and `kstar plan`) flags, in help order; each overrides the config field of its camelCase name. */
// biome-ignore format: one line per flag (flags are added in parallel: one line each to merge)
export const TRAIN_FLAGS: FlagTable = {
  config: { type: 'string', short: 'c', value: 'FILE', help: 'JSON, .js or .ts config (fields as the long options below, camelCase); flags override it' },
  preset: { type: 'string', choices: PRESET_NAMES, help: "the model's shape (default tiny)" },
  layers: { type: 'int', value: 'N', help: "transformer blocks over the preset's" },
  'd-model': { type: 'int', value: 'D', help: "model width over the preset's (divisible by --heads)" },
  heads: { type: 'int', value: 'H', help: "attention heads over the preset's" },
  vocab: { type: 'int', value: 'V', help: "vocabulary rows (≥ the tokenizer's vocabulary; default the tokenizer's)" },
  optimizer: { type: 'string', choices: OPTIMIZER_NAMES, help: 'the optimizer (default adamw)' },
  'grad-clip': { type: 'number', value: 'X', help: 'clip the gradient by its global L2 norm to X (a norm pass, then the update pass)' },
  'grad-accum': { type: 'int', value: 'K', help: 'K micro-batches of --batch rows per optimizer step, gradients averaged: one step\non K × B rows in the memory of B (not with lomo/adalomo, nor --sharding with --grad-clip)' },
  'eval-only': { type: 'boolean', help: 'only print the validation loss of the --resume/--init-from weights' },
  log: { type: 'string', value: 'FILE', help: 'one JSON line per step (step, loss, lr, seconds, gradNorm, valLoss) as training goes' },
  'optimizer-option': { type: 'string', value: 'K=V,…', help: 'optimizer hyper-parameters other than lr (e.g. beta2=0.95,weightDecay=0)' },
  'master-weights': { type: 'string', choices: MASTER_WEIGHTS_NAMES, help: 'weights as float32 (default) or 24-bit split: bf16 + int8 correction, 3 B/param' },
  sharding: { type: 'string', choices: SHARDING_NAMES, help: 'data parallelism over the ranks of `mpirun -np N kstar train …`:\nZeRO stage 0 (all-reduce), 1 (+ optimizer state), 2 (+ gradients), 3 (+ parameters)' },
  steps: { type: 'int', value: 'N', help: 'training steps (default 200)' },
  batch: { type: 'int', value: 'B', help: 'sequences per step (default 8; the global batch, split evenly over the ranks)' },
  seq: { type: 'int', value: 'T', help: "sequence length (default: the preset's context, 128 at most for tiny)" },
  lr: { type: 'number', value: 'X', help: "peak learning rate (default: the preset's)" },
  warmup: { type: 'int', value: 'N', help: 'linear warm-up steps before cosine decay (default 20)' },
  seed: { type: 'int', value: 'N', help: 'seed for weights and batches (default 1234)' },
  'matmul-precision': { type: 'string', choices: MATMUL_PRECISION_NAMES, help: 'matmuls in float32 (default), TF32 tensor cores (cuda only) or f16 operands with\nfloat32 accumulation on subgroup matrices (webgpu only; float32 where the adapter lacks them)' },
  precision: { type: 'string', choices: PRECISION_NAMES, help: 'bf16-mixed: bf16 matmul inputs, float32 accumulation, weights and state (cuda only)' },
  backend: { type: 'string', choices: BACKEND_NAMES, help: '(default auto: cuda where it starts, then tensorflow, webgpu, wasm, cpu)' },
  mode: { type: 'string', choices: MODE_NAMES, help: 'full-graph baseline, or segment-by-segment recompute with gradient release' },
  'blocks-per-segment': { type: 'int', value: 'K', help: 'segmented mode: transformer blocks per segment (default 1)' },
  context: { type: 'int', value: 'N', help: "the model's context (blockSize; default the preset's)" },
  activations: { type: 'string', value: 'LIST', help: 'activation strategies, comma-separated: checkpoint[:every|every:K|sqrt|selective|\nPLAN+selective], mst[:M], compress[:bf16|int8], offload (checkpoint plans,\ncompress and offload select segmented mode; e.g. --activations checkpoint:sqrt,mst,compress:int8)' },
  'memory-budget': { type: 'string', value: 'auto|BYTES', help: "step memory budget (bytes or 512MiB, 2GB…; auto: free memory minus 10%): the planner\npicks per segment keep / checkpoint / compress / offload and the model ops (selective,\nMsT chunks) for the fastest predicted step that fits, re-planning when T changes, when a\nstep's peak overshoots and on out-of-memory (same step retried); or the run stops before\nits first step with the predicted bytes" },
  'seq-schedule': { type: 'string', value: 'T:N,T:N…', help: 'sequence length T for N steps each, in order (e.g. 64:100,256:100); the planner\nre-plans at each change' },
  'pack-documents': { type: 'boolean', help: 'batches of documents (split at blank lines) packed into rows of a --length-buckets\nlength, shuffled per epoch; with --memory-budget the planner re-plans per bucket' },
  'length-buckets': { type: 'string', value: 'T,T…', help: 'with --pack-documents: the batch lengths, ascending (e.g. 64,128,256); each batch takes\nthe smallest that holds its longest document (default: one bucket of --seq)' },
  'offload-state': { type: 'boolean', help: "every parameter's optimizer state in host memory between updates, streamed to the\ndevice around its update (ZeRO-Offload's placement; GPU backends; a no-op on cpu/wasm)" },
  'host-update': { type: 'boolean', help: "with --offload-state and --optimizer adamw: the update computed on the host's float32\narrays (ZeRO-Offload's CPU Adam), the new weights written back; the state never\nreaches the device" },
  'state-choices': { type: 'string', value: 'LIST', help: "with --memory-budget: optimizer-state placements the planner may pick per parameter\ngroup besides float32: 8bit (AdamW's rule on 8-bit moments; --optimizer adamw),\noffload (host memory, streamed around each update; GPU backends only)" },
  'update-chunk-bytes': { type: 'int', value: 'N', help: 'gradient partitioning: update weights in row chunks of ≤ N bytes of temporaries\n(element-wise optimizers: adamw, lion, adam8bit, dense lazy-adagrad)' },
  corpus: { type: 'string', value: 'brown|PATH', help: 'the embedded Brown corpus, or a .txt/.md/.jsonl file or a folder' },
  tokenizer: { type: 'string', choices: TOKENIZER_NAMES, help: 'bytes (default) or GPT-2 BPE' },
  'eval-every': { type: 'int', value: 'N', help: 'validation loss every N steps (default 50; 0: off)' },
  'eval-batches': { type: 'int', value: 'N', help: 'validation batches each time (default 4)' },
  report: { type: 'string', value: 'FILE', help: 'write the JSON report there (also on Ctrl-C, SIGTERM, SIGHUP and a NaN loss)' },
  'report-html': { type: 'string', value: 'FILE', help: 'write the report as a self-contained HTML page (loss, tokens/s, memory ledger)' },
  'spike-guard': { type: 'number', value: 'FACTOR', help: 'skip the update of a step whose loss exceeds FACTOR × the median of the last 20 steps' },
  'save-dir': { type: 'string', value: 'DIR', help: 'write checkpoints to DIR/step-N/ (weights and optimizer state in their stored form)\nat the end, every --save-every N steps, and on Ctrl-C/SIGTERM/SIGHUP' },
  'save-every': { type: 'int', value: 'N', help: 'with --save-dir: a checkpoint every N steps (default 0: at the end and on a stop)' },
  keep: { type: 'int', value: 'K', help: 'with --save-dir: keep the K newest checkpoints (default 3)' },
  resume: { type: 'string', value: 'DIR|latest', help: 'continue a run exactly from a checkpoint (latest: the newest whole one in --save-dir);\nmore --steps, a new --lr… are allowed, a different model or optimizer is an error' },
  'init-from': { type: 'string', value: 'FILE|DIR', help: 'start from safetensors weights in the Hugging Face GPT-2 layout (fine-tuning)' },
  'sample-tokens': { type: 'int', value: 'N', help: 'print a sample of N tokens from the trained model at the end (default 48; 0: none)' },
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
    out[name] = f.type === 'int' || f.type === 'number' ? toNumber(name, v, f.type === 'int') : v;
  }
  return out;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
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

/** `kstar train` flags. Flags override the config file's fields (choices are checked there, by the schema). */
export function parseTrainFlags(argv: string[]): TrainFlags {
  const v = strictParse(argv, parseArgsOptions(TRAIN_FLAGS), "see 'kstar train --help'");
  const overrides: Record<string, unknown> = {};
  for (const [f, spec] of Object.entries(TRAIN_FLAGS)) {
    const value = v[f];
    if (typeof value !== 'string' || f === 'config' || f === 'optimizer-option') continue;
    overrides[camel(f)] = spec.type === 'string' ? value : toNumber(f, value, spec.type === 'int');
  }
  if (v['eval-only'] === true) overrides.evalOnly = true;
  if (v['offload-state'] === true) overrides.offloadState = true;
  if (v['host-update'] === true) overrides.hostUpdate = true;
  if (v['pack-documents'] === true) overrides.packDocuments = true;
  if (typeof v['optimizer-option'] === 'string') {
    // Own properties only (Object.fromEntries): `__proto__=1` is an option name for the plugin to refuse, not a prototype.
    const entries: Array<[string, number | boolean | null]> = [];
    for (const pair of v['optimizer-option'].split(',')) {
      const [key, raw, extra] = pair.split('=');
      if (!key || raw === undefined || extra !== undefined || !OPTION_NAME.test(key)) {
        throw new InputError(
          `flag --optimizer-option: '${pair}' is not name=value (e.g. --optimizer-option beta2=0.95)`,
          'E_FLAG',
        );
      }
      entries.push([
        key,
        raw === 'true'
          ? true
          : raw === 'false'
            ? false
            : raw === 'null'
              ? null
              : toNumber(`optimizer-option ${key}`, raw, false),
      ]);
    }
    overrides.optimizerOptions = Object.fromEntries(entries);
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
