import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InputError } from '@kstar/core';
import { z } from 'zod';
import { parseActivations, parseBytes } from './activations.ts';
import { SHARDING_NAMES } from './sharding.ts';

export const PRESET_NAMES = ['tiny', 'small', 'gpt2-124m'] as const;
export const BACKEND_NAMES = ['auto', 'cpu', 'wasm', 'webgpu', 'tensorflow'] as const;
export const MASTER_WEIGHTS_NAMES = ['fp32', 'split24'] as const;

/**
 * The `kstar train` configuration. Every field can come from a config file (JSON, or a .js/.ts module whose default
 * export is the object) and be overridden by a flag of the same name. Unknown fields are errors.
 */
export const TrainConfigSchema = z.strictObject({
  preset: z.enum(PRESET_NAMES).default('tiny'),
  optimizer: z.string().min(1).default('adamw'),
  /** Optimizer hyper-parameters other than the learning rate, by the plugin's option names. */
  optimizerOptions: z.record(z.string(), z.union([z.number(), z.boolean(), z.null()])).default({}),
  steps: z.int().positive().default(200),
  batch: z.int().positive().default(8),
  /** Sequence length T; defaults to the preset's context (capped at 128 for `tiny`). */
  seq: z.int().positive().optional(),
  lr: z.number().positive().finite().optional(),
  /** Linear warm-up steps, then cosine decay to 10% of `lr`. */
  warmup: z.int().nonnegative().default(20),
  seed: z.int().default(1234),
  backend: z.enum(BACKEND_NAMES).default('auto'),
  /** Default: `full`, or `segmented` for optimizers that update inside the backward pass (lomo, adalomo). */
  mode: z.enum(['full', 'segmented']).optional(),
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
  tokenizer: z.enum(['byte', 'gpt2']).default('byte'),
  /** Validation every N steps (and at the end); 0 turns it off. */
  evalEvery: z.int().nonnegative().default(50),
  evalBatches: z.int().positive().default(4),
  report: z.string().min(1).optional(),
  /** Model context (blockSize) override; default the preset's. */
  context: z.int().positive().optional(),
  /**
   * Activation strategies, comma-separated: `checkpoint[:every|every:K|sqrt|selective|PLAN+selective]`, `mst[:M]`,
   * `compress[:bf16|int8]`. Checkpoint plans and compression select segmented mode.
   */
  activations: z
    .string()
    .optional()
    .superRefine((v, ctx) => {
      if (v === undefined) return;
      try {
        parseActivations(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
    }),
  /** Step memory budget in bytes (or a size like 512MiB): strategies pick their parameters to fit, or the run fails. */
  memoryBudget: z
    .union([z.number().positive(), z.string()])
    .optional()
    .superRefine((v, ctx) => {
      if (v === undefined) return;
      try {
        if (!(parseBytes(v) > 0)) throw new Error(`memory budget '${v}' must be > 0 bytes`);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
    }),
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
  const ext = extname(abs);
  let value: unknown;
  if (ext === '.json') {
    const { readFileSync } = await import('node:fs');
    try {
      value = JSON.parse(readFileSync(abs, 'utf8'));
    } catch (e) {
      throw new InputError(`config file '${path}' is not valid JSON: ${(e as Error).message}`, 'E_CONFIG');
    }
  } else if (['.js', '.mjs', '.cjs', '.ts', '.mts'].includes(ext)) {
    const mod = (await import(pathToFileURL(abs).href)) as { default?: unknown };
    value = mod.default;
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
