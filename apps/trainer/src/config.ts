import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InputError } from '@kstar/core';
import { z } from 'zod';
import { parseActivations, parseBytes } from './activations.ts';
import { parseLengthBuckets } from './packing.ts';
import { parseStateChoices } from './plan-state.ts';
import { parseSeqSchedule } from './seq-schedule.ts';
import { SHARDING_NAMES } from './sharding.ts';

export const PRESET_NAMES = ['tiny', 'small', 'gpt2-124m', 'gpt2-medium', 'gpt2-large', 'gpt2-xl'] as const;
export const BACKEND_NAMES = ['auto', 'cpu', 'wasm', 'webgpu', 'tensorflow', 'cuda'] as const;
export const MASTER_WEIGHTS_NAMES = ['fp32', 'split24'] as const;
export const MODE_NAMES = ['full', 'segmented'] as const;
export const TOKENIZER_NAMES = ['byte', 'gpt2'] as const;
export const MATMUL_PRECISION_NAMES = ['strict', 'tf32', 'f16-mixed'] as const;
export const PRECISION_NAMES = ['float32', 'bf16-mixed'] as const;

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

/**
 * The `kstar train` configuration. Every field can come from a config file (JSON, or a .js/.ts module whose default
 * export is the object) and be overridden by a flag of the same name. Unknown fields are errors.
 */
export const TrainConfigSchema = z.strictObject({
  preset: z.enum(PRESET_NAMES).default('tiny'),
  optimizer: z.string().min(1).default('adamw'),
  /** Optimizer hyper-parameters other than the learning rate, by the plugin's option names. */
  optimizerOptions: z
    .record(z.string(), z.union([z.number(), z.boolean(), z.null()]))
    .default({})
    .superRefine((options, ctx) => {
      // The learning rate has one home (the schedule reads `lr`): recorded here it would be ignored.
      if (Object.hasOwn(options, 'lr')) {
        ctx.addIssue({
          code: 'custom',
          message: `optimizer option 'lr' (${options.lr}) is not read there: use --lr ${options.lr} (config field 'lr')`,
        });
      }
    }),
  steps: z.int().positive().default(200),
  batch: z.int().positive().default(8),
  /** Sequence length T; defaults to the preset's context (capped at 128 for `tiny`). */
  seq: z.int().positive().optional(),
  lr: z.number().positive().finite().optional(),
  /** Linear warm-up steps, then cosine decay to 10% of `lr`. */
  warmup: z.int().nonnegative().default(20),
  seed: z.int().default(1234),
  backend: z.enum(BACKEND_NAMES).default('auto'),
  /** Matmuls: `strict` float32 (default) or `tf32` (cuda only: tensor cores on float32 storage). */
  matmulPrecision: z.enum(MATMUL_PRECISION_NAMES).default('strict'),
  /** `float32` (default) or `bf16-mixed` (cuda only: bf16 matmul inputs; accumulation, weights and state float32). */
  precision: z.enum(PRECISION_NAMES).default('float32'),
  /** Default: `full`, or `segmented` for optimizers that update inside the backward pass (lomo, adalomo). */
  mode: z.enum(MODE_NAMES).optional(),
  /**
   * How weights are kept between steps: `fp32` (the model's float32 variables) or `split24` (bf16 half + int8
   * correction, 3 bytes a parameter, `@kstar/master-split24`). Works with every optimizer.
   */
  masterWeights: z.enum(MASTER_WEIGHTS_NAMES).default('fp32'),
  sharding: z.enum(SHARDING_NAMES).default('none'),
  /** Segmented mode: transformer blocks per segment. */
  blocksPerSegment: z.int().positive().default(1),
  /** Gradient partitioning: update large weights in row chunks whose temporaries stay within this many bytes. */
  updateChunkBytes: z.int().positive().optional(),
  /** `brown` (the embedded default), or a path to a .txt/.md/.jsonl file or a folder. */
  corpus: z.string().min(1).default('brown'),
  tokenizer: z.enum(TOKENIZER_NAMES).default('byte'),
  /** Validation every N steps (and at the end); 0 turns it off. */
  evalEvery: z.int().nonnegative().default(50),
  evalBatches: z.int().positive().default(4),
  report: z.string().min(1).optional(),
  /** Skip the update of a step whose loss exceeds this factor × the recent median (a loss spike); off by default. */
  spikeGuard: z.number().gt(1).finite().optional(),
  /** Write the report as a self-contained HTML page there (`kstar report` renders a saved one). */
  reportHtml: z.string().min(1).optional(),
  /** Checkpoints go to `saveDir/step-NNNNNNNN/` (at the end, every `saveEvery` steps, and on Ctrl-C). */
  saveDir: z.string().min(1).optional(),
  /** Save every N steps (0: only at the end and on Ctrl-C). */
  saveEvery: z.int().nonnegative().default(0),
  /** Keep the newest K checkpoints of `saveDir`. */
  keep: z.int().positive().default(3),
  /** Resume from a checkpoint directory, or `latest` (the newest whole one in `saveDir`). */
  resume: z.string().min(1).optional(),
  /** Start from these weights (safetensors in the Hugging Face GPT-2 layout: a file, or a directory holding model.safetensors). */
  initFrom: z.string().min(1).optional(),
  /** Tokens of the sample printed after training (greedy-free: temperature 0.8, top-k 40, the run's seed); 0: none. */
  sampleTokens: z.int().nonnegative().default(48),
  /** Model shape overrides of the preset: transformer blocks, width (D), attention heads (must divide D), vocabulary. */
  layers: z.int().positive().optional(),
  dModel: z.int().positive().optional(),
  heads: z.int().positive().optional(),
  /** Vocabulary rows (≥ the tokenizer's; default the tokenizer's). */
  vocab: z.int().positive().optional(),
  /** Micro-batches of `batch` rows per optimizer step (gradients averaged: one step on K × batch rows). */
  gradAccum: z.int().positive().default(1),
  /** Clip the gradient by its global L2 norm (two passes: the norm first, then the clipped update). */
  gradClip: z.number().positive().finite().optional(),
  /** Only evaluate the validation loss of the (resumed or --init-from) weights; no training step. */
  evalOnly: z.boolean().default(false),
  /** Every parameter's optimizer state in host memory between updates (`@kstar/offload`'s `offloadState`). */
  offloadState: z.boolean().default(false),
  /** With `offloadState` and AdamW: the update computed on the host (`@kstar/offload`'s `hostAdamW`). */
  hostUpdate: z.boolean().default(false),
  /** Append one JSON line of metrics per step to this file as training goes. */
  log: z.string().min(1).optional(),
  /** Model context (blockSize) override; default the preset's. */
  context: z.int().positive().optional(),
  /**
   * Activation strategies, comma-separated: `checkpoint[:every|every:K|sqrt|selective|PLAN+selective]`, `mst[:M]`,
   * `compress[:bf16|int8]`. Checkpoint plans and compression select segmented mode.
   */
  activations: z.string().optional().superRefine(parsedBy(parseActivations)),
  /** Sequence lengths over the run, `T:STEPS,T:STEPS…` (see `parseSeqSchedule`); overrides `seq`. */
  seqSchedule: z.string().optional().superRefine(parsedBy(parseSeqSchedule)),
  /** Training batches of whole documents packed into rows of a length bucket (`DocumentPacker` of @kstar/data). */
  packDocuments: z.boolean().default(false),
  /** With `packDocuments`: the batch lengths, ascending, `64,128,256` (the planner plans once per bucket). */
  lengthBuckets: z.string().optional().superRefine(parsedBy(parseLengthBuckets)),
  /** Optimizer-state placements the planner may choose per parameter group: `8bit`, `offload` (with a budget). */
  stateChoices: z.string().optional().superRefine(parsedBy(parseStateChoices)),
  /** Step memory budget in bytes (or a size like 512MiB, or `auto`): the planner fits the step to it, or the run fails. */
  memoryBudget: z
    .union([z.number().positive(), z.string()])
    .optional()
    .superRefine(
      parsedBy((v) => {
        if (v !== 'auto' && !(parseBytes(v) > 0)) throw new Error(`memory budget '${v}' must be > 0 bytes`);
      }),
    ),
});

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
