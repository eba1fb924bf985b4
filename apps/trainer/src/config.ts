import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InputError, parseBytes } from '@kstar/core';
import { z } from 'zod';
import { parseActivations } from './activations.ts';
import { OPTIMIZERS } from './optimizers.ts';
import { parseLengthBuckets } from './packing.ts';
import { parseStateChoices } from './plan-state.ts';
import { parseSeqSchedule } from './seq-schedule.ts';
import { SHARDING_NAMES } from './sharding.ts';

export const PRESET_NAMES = ['tiny', 'small', 'gpt2-124m', 'gpt2-medium', 'gpt2-large', 'gpt2-xl'] as const;
export const BACKEND_NAMES = ['auto', 'cpu', 'wasm', 'webgpu', 'tensorflow', 'cuda'] as const;

/** A zod refinement: `parse(value)` must not throw; its error's message becomes the issue (absent values pass). */
function parsedBy<T>(parse: (value: T) => unknown) {
  return (value: T | undefined, ctx: z.RefinementCtx): void => {
    if (value === undefined) return;
    try {
      parse(value);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  };
}

/** The learning rate has one home (the schedule reads `lr`): an optimizer option `lr` would be ignored. */
const optimizerOptions = z
  .record(z.string(), z.union([z.number(), z.boolean(), z.null()]))
  .default({})
  .superRefine((options, ctx) => {
    if (Object.hasOwn(options, 'lr')) {
      const message = `optimizer option 'lr' (${options.lr}) is not read there: use --lr ${options.lr} (config field 'lr')`;
      ctx.addIssue({ code: 'custom', message });
    }
  });

const memoryBudget = z
  .union([z.number().positive(), z.string()])
  .optional()
  .superRefine(
    parsedBy((v) => {
      if (v !== 'auto' && !(parseBytes(v, 'memory budget') > 0))
        throw new Error(`memory budget '${v}' must be > 0 bytes`);
    }),
  );

/**
 * One `kstar train` option, declared once: its config field (the key, camelCase) with the schema that checks it and
 * gives its default, and its flag (`--kebab-case`, or `flag`): the flag's type and choices come from the schema
 * (`flags.ts`), `value` is its placeholder in the help, `help` its help text (`\n` continues it, aligned).
 */
export interface TrainOption {
  readonly schema: z.ZodType;
  readonly help: string;
  readonly value?: string;
  /** The accepted names where the schema takes any string (the optimizer registry checks `optimizer`). */
  readonly choices?: readonly string[];
  /** The flag's name where it is not the field's in kebab-case. */
  readonly flag?: string;
}

/**
 * `kstar train`'s options, in help order: every field can come from a config file (JSON, or a .js/.ts module whose
 * default export is the object) and be overridden by its flag. Unknown fields are errors.
 */
// biome-ignore format: one line per option (options are added in parallel: one line each to merge)
export const TRAIN_OPTIONS = {
  preset: { schema: z.enum(PRESET_NAMES).default('tiny'), help: "the model's shape (default tiny)" },
  layers: { schema: z.int().positive().optional(), value: 'N', help: "transformer blocks over the preset's" },
  dModel: { schema: z.int().positive().optional(), value: 'D', help: "model width over the preset's (divisible by --heads)" },
  heads: { schema: z.int().positive().optional(), value: 'H', help: "attention heads over the preset's" },
  vocab: { schema: z.int().positive().optional(), value: 'V', help: "vocabulary rows (≥ the tokenizer's vocabulary; default the tokenizer's)" },
  optimizer: { schema: z.string().min(1).default('adamw'), choices: Object.keys(OPTIMIZERS), help: 'the optimizer (default adamw)' },
  gradClip: { schema: z.number().positive().finite().optional(), value: 'X', help: 'clip the gradient by its global L2 norm to X (a norm pass, then the update pass)' },
  gradAccum: { schema: z.int().positive().default(1), value: 'K', help: 'K micro-batches of --batch rows per optimizer step, gradients averaged: one step\non K × B rows in the memory of B (not with lomo/adalomo, nor --sharding with --grad-clip)' },
  evalOnly: { schema: z.boolean().default(false), help: 'only print the validation loss of the --resume/--init-from weights' },
  log: { schema: z.string().min(1).optional(), value: 'FILE', help: 'one JSON line per step (step, loss, lr, seconds, gradNorm, valLoss) as training goes' },
  optimizerOptions: { schema: optimizerOptions, flag: 'optimizer-option', value: 'K=V,…', help: 'optimizer hyper-parameters other than lr (e.g. beta2=0.95,weightDecay=0)' },
  masterWeights: { schema: z.enum(['fp32', 'split24']).default('fp32'), help: 'weights as float32 (default) or 24-bit split: bf16 + int8 correction, 3 B/param' },
  sharding: { schema: z.enum(SHARDING_NAMES).default('none'), help: 'data parallelism over the ranks of `mpirun -np N kstar train …`:\nZeRO stage 0 (all-reduce), 1 (+ optimizer state), 2 (+ gradients), 3 (+ parameters)' },
  steps: { schema: z.int().positive().default(200), value: 'N', help: 'training steps (default 200)' },
  batch: { schema: z.int().positive().default(8), value: 'B', help: 'sequences per step (default 8; the global batch, split evenly over the ranks)' },
  seq: { schema: z.int().positive().optional(), value: 'T', help: "sequence length (default: the preset's context, 128 at most for tiny)" },
  lr: { schema: z.number().positive().finite().optional(), value: 'X', help: "peak learning rate (default: the preset's)" },
  warmup: { schema: z.int().nonnegative().default(20), value: 'N', help: 'linear warm-up steps before cosine decay (default 20)' },
  seed: { schema: z.int().default(1234), value: 'N', help: 'seed for weights and batches (default 1234)' },
  matmulPrecision: { schema: z.enum(['strict', 'tf32', 'f16-mixed']).default('strict'), help: 'matmuls in float32 (default), TF32 tensor cores (cuda only) or f16 operands with\nfloat32 accumulation on subgroup matrices (webgpu only; float32 where the adapter lacks them)' },
  precision: { schema: z.enum(['float32', 'bf16-mixed']).default('float32'), help: 'bf16-mixed: bf16 matmul inputs, float32 accumulation, weights and state (cuda only)' },
  backend: { schema: z.enum(BACKEND_NAMES).default('auto'), help: '(default auto: cuda where it starts, then tensorflow, webgpu, wasm, cpu)' },
  // No default: `segmented` for the optimizers that update inside the backward pass (lomo, adalomo), else `full`.
  mode: { schema: z.enum(['full', 'segmented']).optional(), help: 'full-graph baseline, or segment-by-segment recompute with gradient release' },
  blocksPerSegment: { schema: z.int().positive().default(1), value: 'K', help: 'segmented mode: transformer blocks per segment (default 1)' },
  context: { schema: z.int().positive().optional(), value: 'N', help: "the model's context (blockSize; default the preset's)" },
  activations: { schema: z.string().optional().superRefine(parsedBy(parseActivations)), value: 'LIST', help: 'activation strategies, comma-separated: checkpoint[:every|every:K|sqrt|selective|\nPLAN+selective], mst[:M], compress[:bf16|int8], offload (checkpoint plans,\ncompress and offload select segmented mode; e.g. --activations checkpoint:sqrt,mst,compress:int8)' },
  memoryBudget: { schema: memoryBudget, value: 'auto|BYTES', help: "step memory budget (bytes or 512MiB, 2GB…; auto: free memory minus 10%): the planner\npicks per segment keep / checkpoint / compress / offload and the model ops (selective,\nMsT chunks) for the fastest predicted step that fits, re-planning when T changes, when a\nstep's peak overshoots and on out-of-memory (same step retried); or the run stops before\nits first step with the predicted bytes" },
  seqSchedule: { schema: z.string().optional().superRefine(parsedBy(parseSeqSchedule)), value: 'T:N,T:N…', help: 'sequence length T for N steps each, in order (e.g. 64:100,256:100); the planner\nre-plans at each change' },
  packDocuments: { schema: z.boolean().default(false), help: 'batches of documents (split at blank lines) packed into rows of a --length-buckets\nlength, shuffled per epoch; with --memory-budget the planner re-plans per bucket' },
  lengthBuckets: { schema: z.string().optional().superRefine(parsedBy(parseLengthBuckets)), value: 'T,T…', help: 'with --pack-documents: the batch lengths, ascending (e.g. 64,128,256); each batch takes\nthe smallest that holds its longest document (default: one bucket of --seq)' },
  offloadState: { schema: z.boolean().default(false), help: "every parameter's optimizer state in host memory between updates, streamed to the\ndevice around its update (ZeRO-Offload's placement; GPU backends; a no-op on cpu/wasm)" },
  hostUpdate: { schema: z.boolean().default(false), help: "with --offload-state and --optimizer adamw: the update computed on the host's float32\narrays (ZeRO-Offload's CPU Adam), the new weights written back; the state never\nreaches the device" },
  stateChoices: { schema: z.string().optional().superRefine(parsedBy(parseStateChoices)), value: 'LIST', help: "with --memory-budget: optimizer-state placements the planner may pick per parameter\ngroup besides float32: 8bit (AdamW's rule on 8-bit moments; --optimizer adamw),\noffload (host memory, streamed around each update; GPU backends only)" },
  updateChunkBytes: { schema: z.int().positive().optional(), value: 'N', help: 'gradient partitioning: update weights in row chunks of ≤ N bytes of temporaries\n(element-wise optimizers: adamw, lion, adam8bit, dense lazy-adagrad)' },
  corpus: { schema: z.string().min(1).default('brown'), value: 'brown|PATH', help: 'the embedded Brown corpus, or a .txt/.md/.jsonl file or a folder' },
  tokenizer: { schema: z.enum(['byte', 'gpt2']).default('byte'), help: 'bytes (default) or GPT-2 BPE' },
  evalEvery: { schema: z.int().nonnegative().default(50), value: 'N', help: 'validation loss every N steps (default 50; 0: off)' },
  evalBatches: { schema: z.int().positive().default(4), value: 'N', help: 'validation batches each time (default 4)' },
  report: { schema: z.string().min(1).optional(), value: 'FILE', help: 'write the JSON report there (also on Ctrl-C, SIGTERM, SIGHUP and a NaN loss)' },
  reportHtml: { schema: z.string().min(1).optional(), value: 'FILE', help: 'write the report as a self-contained HTML page (loss, tokens/s, memory ledger)' },
  spikeGuard: { schema: z.number().gt(1).finite().optional(), value: 'FACTOR', help: 'skip the update of a step whose loss exceeds FACTOR × the median of the last 20 steps' },
  saveDir: { schema: z.string().min(1).optional(), value: 'DIR', help: 'write checkpoints to DIR/step-N/ (weights and optimizer state in their stored form)\nat the end, every --save-every N steps, and on Ctrl-C/SIGTERM/SIGHUP' },
  saveEvery: { schema: z.int().nonnegative().default(0), value: 'N', help: 'with --save-dir: a checkpoint every N steps (default 0: at the end and on a stop)' },
  keep: { schema: z.int().positive().default(3), value: 'K', help: 'with --save-dir: keep the K newest checkpoints (default 3)' },
  resume: { schema: z.string().min(1).optional(), value: 'DIR|latest', help: 'continue a run exactly from a checkpoint (latest: the newest whole one in --save-dir);\nmore --steps, a new --lr… are allowed, a different model or optimizer is an error' },
  initFrom: { schema: z.string().min(1).optional(), value: 'FILE|DIR', help: 'start from safetensors weights in the Hugging Face GPT-2 layout (fine-tuning)' },
  sampleTokens: { schema: z.int().nonnegative().default(48), value: 'N', help: 'print a sample of N tokens from the trained model at the end (default 48; 0: none)' },
} satisfies Record<string, TrainOption>;

type TrainShape = { [K in keyof typeof TRAIN_OPTIONS]: (typeof TRAIN_OPTIONS)[K]['schema'] };

/** The config's schema, from the options table. */
export const TrainConfigSchema = z.strictObject(
  Object.fromEntries(Object.entries(TRAIN_OPTIONS).map(([k, o]) => [k, o.schema])) as TrainShape,
);

export type TrainConfig = z.infer<typeof TrainConfigSchema>;

/** One-line description of the first problem zod found, naming the field. */
export function describeIssue(error: z.ZodError, origin: string): string {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const known = Object.keys(TrainConfigSchema.shape).join(', ');
    return `${origin}: unknown config field '${issue.keys.join("', '")}' (known fields: ${known})`;
  }
  const field = issue.path.join('.') || '(root)';
  return `${origin}: field '${field}': ${issue.message}`;
}

/** Validate a raw object (from a file merged with flags) into a TrainConfig, or throw an InputError naming the field. */
export function parseTrainConfig(raw: unknown, origin = 'config'): TrainConfig {
  // zod copies records by assignment, which drops a `__proto__` key (JSON.parse makes it an own one) silently.
  const options = (raw as { optimizerOptions?: unknown } | null)?.optimizerOptions;
  if (typeof options === 'object' && options !== null && Object.hasOwn(options, '__proto__')) {
    throw new InputError(
      `${origin}: field 'optimizerOptions': '__proto__' is not an option name`,
      'E_CONFIG',
    );
  }
  const result = TrainConfigSchema.safeParse(raw);
  if (!result.success) throw new InputError(describeIssue(result.error, origin), 'E_CONFIG');
  return result.data;
}

/** Load a config file: `.json`, or a `.js`/`.mjs`/`.ts` module whose default export is the config object. */
export async function loadConfigFile(path: string): Promise<Record<string, unknown>> {
  const abs = resolve(path);
  if (!existsSync(abs)) {
    throw new InputError(`config file '${path}' does not exist: pass a .json, .js or .ts file`, 'E_CONFIG');
  }
  if (!statSync(abs).isFile()) {
    throw new InputError(`config file '${path}' is not a file: pass a .json, .js or .ts file`, 'E_CONFIG');
  }
  const ext = extname(abs);
  let value: unknown;
  if (ext === '.json') {
    let text: string;
    try {
      text = readFileSync(abs, 'utf8');
    } catch (e) {
      throw new InputError(`config file '${path}' cannot be read: ${(e as Error).message}`, 'E_CONFIG');
    }
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new InputError(`config file '${path}' is not valid JSON: ${(e as Error).message}`, 'E_CONFIG');
    }
  } else if (['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'].includes(ext)) {
    try {
      if (['.ts', '.mts', '.cts'].includes(ext)) {
        // Node cannot import TypeScript from an installed CLI (no tsx there): jiti transpiles the config on the fly.
        const { createJiti } = await import('jiti');
        value = await createJiti(import.meta.url).import(abs, { default: true });
      } else {
        const mod = (await import(pathToFileURL(abs).href)) as { default?: unknown };
        value = await mod.default;
      }
    } catch (e) {
      // A syntax error, a throw at import, a missing import: the module's own message, on one line.
      const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      throw new InputError(
        `config file '${path}' failed to load (${message.replace(/\s+/g, ' ').trim()}): fix the module or use a .json config`,
        'E_CONFIG',
      );
    }
  } else {
    throw new InputError(
      `config file '${path}' has extension '${ext}': use .json, .js, .mjs or .ts`,
      'E_CONFIG',
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InputError(
      `config file '${path}' must hold (or default-export) an object of config fields`,
      'E_CONFIG',
    );
  }
  return value as Record<string, unknown>;
}
