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
];
const NUM_FLAGS = ['lr'];
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
  'activations',
  'memory-budget',
];

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Parse a number flag strictly: `--steps -3` and `--steps 1e400` reach the schema as numbers, `--steps abc` fails here. */
function toNumber(flag: string, text: string, integer: boolean): number {
  const value = Number(text);
  if (text.trim() === '' || Number.isNaN(value)) {
    throw new InputError(`flag --${flag}: '${text}' is not a number`, 'E_FLAG');
  }
  if (integer && !Number.isInteger(value)) {
    throw new InputError(`flag --${flag}: '${text}' is not an integer`, 'E_FLAG');
  }
  return value;
}

/** `kstar train` flags. Flags override the config file's fields. */
export function parseTrainFlags(argv: string[]): TrainFlags {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
    'optimizer-option': { type: 'string' },
  };
  for (const f of [...INT_FLAGS, ...NUM_FLAGS, ...STR_FLAGS]) options[f] = { type: 'string' };
  // `--steps -3` would read as a missing value followed by an option `-3`: join negative numbers to their flag so
  // that the schema can say what is wrong with the value.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (
      a.startsWith('--') &&
      !a.includes('=') &&
      options[a.slice(2)]?.type === 'string' &&
      next !== undefined &&
      /^-\d/.test(next)
    ) {
      args.push(`${a}=${next}`);
      i++;
    } else {
      args.push(a);
    }
  }
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
  if (typeof v['optimizer-option'] === 'string') {
    const opts: Record<string, number | boolean | null> = {};
    for (const pair of v['optimizer-option'].split(',')) {
      const [key, raw] = pair.split('=');
      if (!key || raw === undefined) {
        throw new InputError(
          `flag --optimizer-option: '${pair}' is not key=value (e.g. --optimizer-option beta2=0.95)`,
          'E_FLAG',
        );
      }
      opts[key] =
        raw === 'true'
          ? true
          : raw === 'false'
            ? false
            : raw === 'null'
              ? null
              : toNumber(`optimizer-option ${key}`, raw, false);
    }
    overrides.optimizerOptions = opts;
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
  --preset tiny|small|gpt2-124m
  --optimizer NAME           adamw (default)
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
  --backend auto|cpu|wasm|webgpu|tensorflow
  --mode full|segmented      full-graph baseline, or segment-by-segment recompute with gradient release
  --blocks-per-segment K     segmented mode: transformer blocks per segment (default 1)
  --context N                the model's context (blockSize; default the preset's)
  --activations LIST         activation strategies, comma-separated: checkpoint[:every|every:K|sqrt|selective|
                             PLAN+selective], mst[:M], compress[:bf16|int8] (checkpoint plans and compress select
                             segmented mode; e.g. --activations checkpoint:sqrt,mst,compress:int8)
  --memory-budget BYTES      step memory budget (bytes or 512MiB, 2GB…): checkpoint plan and MsT chunks are picked
                             from predictions to fit, or the run stops before its first step with the predicted bytes
  --update-chunk-bytes N     gradient partitioning: update weights in row chunks of ≤ N bytes of temporaries
                             (element-wise optimizers: adamw, lion, adam8bit, dense lazy-adagrad)
  --corpus brown|PATH        the embedded Brown corpus, or a .txt/.md/.jsonl file or a folder
  --tokenizer byte|gpt2
  --eval-every N             validation loss every N steps (0: off); --eval-batches N batches each
  --report FILE              write the JSON report there (also on Ctrl-C)
`;

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
    return parseArgs({ args: argv, options, strict: true }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (e) {
    throw new InputError(`${(e as Error).message.split('\n')[0]} (${hint})`, 'E_FLAG');
  }
}
