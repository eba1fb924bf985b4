import { parseArgs } from 'node:util';
import { InputError } from '@kstar/core';

export interface TrainFlags {
  config?: string;
  overrides: Record<string, unknown>;
  help: boolean;
}

const INT_FLAGS = [
  'steps',
  'batch',
  'seq',
  'seed',
  'warmup',
  'eval-every',
  'eval-batches',
  'blocks-per-segment',
  'context',
  'update-chunk-bytes',
  'save-every',
  'keep',
  'sample-tokens',
  'layers',
  'd-model',
  'heads',
  'vocab',
  'grad-accum',
];
const NUM_FLAGS = ['lr', 'spike-guard', 'grad-clip'];
const STR_FLAGS = [
  'preset',
  'optimizer',
  'master-weights',
  'sharding',
  'backend',
  'mode',
  'corpus',
  'tokenizer',
  'report',
  'report-html',
  'activations',
  'memory-budget',
  'seq-schedule',
  'state-choices',
  'save-dir',
  'resume',
  'init-from',
  'log',
];

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

/** `kstar train` flags. Flags override the config file's fields. */
export function parseTrainFlags(argv: string[]): TrainFlags {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
    'eval-only': { type: 'boolean' },
    'optimizer-option': { type: 'string' },
  };
  for (const f of [...INT_FLAGS, ...NUM_FLAGS, ...STR_FLAGS]) options[f] = { type: 'string' };
  const args = joinNegativeValues(argv, options);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: false, strict: true, allowNegative: false });
  } catch (e) {
    throw new InputError(`${(e as Error).message.split('\n')[0]} (see 'kstar train --help')`, 'E_FLAG');
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const overrides: Record<string, unknown> = {};
  for (const f of INT_FLAGS) if (typeof v[f] === 'string') overrides[camel(f)] = toNumber(f, v[f], true);
  for (const f of NUM_FLAGS) if (typeof v[f] === 'string') overrides[camel(f)] = toNumber(f, v[f], false);
  for (const f of STR_FLAGS) if (typeof v[f] === 'string') overrides[camel(f)] = v[f];
  if (v['eval-only'] === true) overrides.evalOnly = true;
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

  -c, --config FILE          JSON, .js or .ts config (fields as the long options below, camelCase); flags override it
  --preset tiny|small|gpt2-124m|gpt2-medium|gpt2-large|gpt2-xl
  --layers N --d-model D --heads H --vocab V
                             model shape over the preset (D divisible by H; V ≥ the tokenizer's vocabulary)
  --optimizer NAME           adamw (default), adafactor, came, adam8bit, lomo, adalomo, lazy-adagrad, lion
  --grad-clip X              clip the gradient by its global L2 norm to X (a norm pass, then the update pass)
  --grad-accum K             K micro-batches of --batch rows per optimizer step, gradients averaged: one step
                             on K × B rows in the memory of B (not with lomo/adalomo)
  --eval-only                only print the validation loss of the --resume/--init-from weights
  --log FILE                 one JSON line per step (step, loss, lr, seconds, gradNorm, valLoss) as training goes
  --optimizer-option K=V,…   optimizer hyper-parameters other than lr (e.g. beta2=0.95,weightDecay=0)
  --master-weights fp32|split24  weights as float32 (default) or 24-bit split: bf16 + int8 correction, 3 B/param
  --sharding none|zero0|zero1|zero2|zero3  data parallelism over the ranks of \`mpirun -np N kstar train …\`:
                             ZeRO stage 0 (all-reduce), 1 (+ optimizer state), 2 (+ gradients), 3 (+ parameters)
  --steps N                  training steps (default 200)
  --batch B                  sequences per step (default 8; the global batch, split evenly over the ranks)
  --seq T                    sequence length (default: the preset's context, 128 at most for tiny)
  --lr X                     peak learning rate (default: the preset's)
  --warmup N                 linear warm-up steps before cosine decay (default 20)
  --seed N                   seed for weights and batches (default 1234)
  --backend auto|cpu|wasm|webgpu|tensorflow|cuda  (auto: cuda where it starts, then tensorflow, webgpu, wasm, cpu)
  --mode full|segmented      full-graph baseline, or segment-by-segment recompute with gradient release
  --blocks-per-segment K     segmented mode: transformer blocks per segment (default 1)
  --context N                the model's context (blockSize; default the preset's)
  --activations LIST         activation strategies, comma-separated: checkpoint[:every|every:K|sqrt|selective|
                             PLAN+selective], mst[:M], compress[:bf16|int8] (checkpoint plans and compress select
                             segmented mode; e.g. --activations checkpoint:sqrt,mst,compress:int8)
  --memory-budget auto|BYTES step memory budget (bytes or 512MiB, 2GB…; auto: free memory minus 10%): the planner
                             picks per segment keep / checkpoint / compress / offload and the model ops (selective,
                             MsT chunks) for the fastest predicted step that fits, re-planning when T changes, when a
                             step's peak overshoots and on out-of-memory (same step retried); or the run stops before
                             its first step with the predicted bytes
  --seq-schedule T:N,T:N…    sequence length T for N steps each, in order (e.g. 64:100,256:100); the planner
                             re-plans at each change
  --state-choices LIST       with --memory-budget: optimizer-state placements the planner may pick per parameter
                             group besides float32: 8bit (AdamW's rule on 8-bit moments; --optimizer adamw),
                             offload (host memory, streamed around each update; GPU backends only)
  --update-chunk-bytes N     gradient partitioning: update weights in row chunks of ≤ N bytes of temporaries
                             (element-wise optimizers: adamw, lion, adam8bit, dense lazy-adagrad)
  --corpus brown|PATH        the embedded Brown corpus, or a .txt/.md/.jsonl file or a folder
  --tokenizer byte|gpt2
  --eval-every N             validation loss every N steps (0: off); --eval-batches N batches each
  --report FILE              write the JSON report there (also on Ctrl-C, SIGTERM, SIGHUP and a NaN loss)
  --report-html FILE         write the report as a self-contained HTML page (loss, tokens/s, memory ledger)
  --spike-guard FACTOR       skip the update of a step whose loss exceeds FACTOR × the median of the last 20 steps
  --save-dir DIR             write checkpoints to DIR/step-N/ (weights and optimizer state in their stored form)
                             at the end, every --save-every N steps, and on Ctrl-C/SIGTERM/SIGHUP; --keep K newest (default 3)
  --resume DIR|latest        continue a run exactly from a checkpoint (latest: the newest whole one in --save-dir);
                             more --steps, a new --lr… are allowed, a different model or optimizer is an error
  --init-from FILE|DIR       start from safetensors weights in the Hugging Face GPT-2 layout (fine-tuning)
  --sample-tokens N          print a sample of N tokens from the trained model at the end (default 48; 0: none)
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
  try {
    return parseArgs({ args: joinNegativeValues(argv, options), options, strict: true }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (e) {
    throw new InputError(`${(e as Error).message.split('\n')[0]} (${hint})`, 'E_FLAG');
  }
}
