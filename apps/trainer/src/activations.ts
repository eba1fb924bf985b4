import { type CheckpointPlan, checkpoint, parsePlan, planSegments } from '@kstar/act-checkpoint';
import { bf16Codec, type CompressFormat, compress, int8Codec } from '@kstar/act-compress';
import { mst, parseMstSpec } from '@kstar/act-mst';
import {
  type ActivationStrategy,
  activationMode,
  type EngineMode,
  InputError,
  recomputesSegments,
  type SavedTensorCodec,
} from '@kstar/core';
import type { ActivationBackend, GPTConfig } from '@kstar/gpt';
import { predictActivationBytes } from '@kstar/gpt';
import { offload, offloadCodec } from '@kstar/offload';
import { mstChunks } from './plan-space.ts';

/**
 * `--activations checkpoint[:plan],mst[:M],compress[:bf16|int8]`, parsed. `plan` and the MsT chunking may be left
 * open (`undefined`): the defaults, or with `--memory-budget` the planner picks them.
 */
export interface ActivationSpec {
  checkpoint?: { plan?: CheckpointPlan; selective: boolean };
  mst?: { chunks?: number; mlpChunks?: number; attentionChunk?: number; lossChunks?: number };
  compress?: { format: CompressFormat };
  /** Saved segment inputs in host memory (`@kstar/offload`; a no-op on cpu/wasm). */
  offload?: true;
}

const NAMES = ['checkpoint', 'mst', 'compress', 'offload'] as const;

/** Split on commas outside brackets; a piece that does not start with a strategy name continues the previous one. */
function splitItems(text: string): string[] {
  const raw: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      raw.push(cur);
      cur = '';
    } else cur += ch;
  }
  raw.push(cur);
  const items: string[] = [];
  for (const r of raw.map((s) => s.trim())) {
    const head = r.split(':')[0]!;
    if ((NAMES as readonly string[]).includes(head) || items.length === 0) items.push(r);
    else items[items.length - 1] += `,${r}`;
  }
  return items;
}

/** Parse the `activations` config value; InputError naming the offending item and the accepted forms. */
export function parseActivations(text: string): ActivationSpec {
  const spec: ActivationSpec = {};
  const t = text.trim();
  if (t === '' || t === 'none') return spec;
  for (const item of splitItems(t)) {
    const colon = item.indexOf(':');
    const name = colon < 0 ? item : item.slice(0, colon);
    const arg = colon < 0 ? undefined : item.slice(colon + 1);
    if (!(NAMES as readonly string[]).includes(name)) {
      throw new InputError(
        `activations: '${item}' is not a strategy: use checkpoint[:every|every:K|sqrt|selective|PLAN+selective], mst[:M], compress[:bf16|int8], offload, comma-separated`,
        'E_CONFIG',
      );
    }
    if (spec[name as keyof ActivationSpec]) {
      throw new InputError(`activations: '${name}' is given twice: keep one`, 'E_CONFIG');
    }
    if (name === 'checkpoint') {
      let selective = false;
      let planText = arg;
      if (planText?.endsWith('+selective')) {
        selective = true;
        planText = planText.slice(0, -'+selective'.length);
      }
      const plan = planText === undefined ? undefined : parsePlan(planText);
      if (plan === 'selective') spec.checkpoint = { selective: true };
      else spec.checkpoint = { ...(plan !== undefined ? { plan } : {}), selective };
    } else if (name === 'mst') {
      const o = parseMstSpec(arg ?? '');
      if (o.targetBytes !== undefined) {
        throw new InputError(
          'activations: mst:target=… is not accepted by the trainer: use --memory-budget BYTES (it picks the chunks)',
          'E_CONFIG',
        );
      }
      spec.mst = o;
    } else if (name === 'offload') {
      if (arg !== undefined) {
        throw new InputError(
          `activations: 'offload' takes no argument (got '${item}'): write offload`,
          'E_CONFIG',
        );
      }
      spec.offload = true;
    } else {
      if (arg !== undefined && arg !== 'bf16' && arg !== 'int8') {
        throw new InputError(
          `activations: compress format '${arg}' is unknown: use compress:bf16 or compress:int8`,
          'E_CONFIG',
        );
      }
      spec.compress = { format: (arg ?? 'bf16') as CompressFormat };
    }
  }
  if (spec.offload && spec.compress) {
    throw new InputError(
      `activations: compress:${spec.compress.format} and offload both store the saved segment inputs: keep one (offload frees their device bytes whole)`,
      'E_CONFIG',
    );
  }
  return spec;
}

/** A concrete choice: every open parameter decided. */
export interface ActivationChoice {
  mode: 'full' | 'segmented';
  segments?: number[][];
  /** Who sets the segments: the checkpoint strategy's plan, or the engine's `segments` option (--blocks-per-segment). */
  segmentsBy?: 'checkpoint' | 'engine';
  selective: boolean;
  mst?: { mlpChunks: number; attentionChunk: number; lossChunks: number };
  compress?: CompressFormat;
  /** Saved segment inputs in host memory. */
  offload?: boolean;
}

/**
 * The codec that stores a choice's saved segment inputs (act-compress's, or offload's), or none (float32 as is).
 * Asked for their bytes: offload's answers for the current backend (0 where it moves them to host memory).
 */
function choiceCodec(choice: ActivationChoice): SavedTensorCodec | undefined {
  if (choice.offload) return offloadCodec;
  if (choice.compress) return choice.compress === 'bf16' ? bf16Codec : int8Codec();
  return undefined;
}

/** Predicted activation bytes of a choice (the GPT's derivation with the strategies' parts). */
export function predictChoiceActivations(
  config: GPTConfig,
  choice: ActivationChoice,
  batch: number,
  seq: number,
  backend: ActivationBackend,
): number {
  const saved = choiceCodec(choice)?.savedBytes([batch * seq * config.nEmbd]);
  return predictActivationBytes(config, {
    batch,
    seq,
    mode: choice.mode,
    backend,
    ...(choice.segments ? { segments: choice.segments } : {}),
    selectiveAttention: choice.selective,
    ...(saved !== undefined ? { savedInputBytes: saved } : {}),
    ...(choice.mst ? { mst: choice.mst } : {}),
  });
}

/** Bytes a step holds besides activations: parameters, optimizer state, tied gradients waiting (segmented). */
export interface FixedBytes {
  params: number;
  optimizerState: number;
  /** Partial gradients of parameters read by several segments, for a segment plan. */
  waitingGrads(segments: number[][] | undefined): number;
  /** `--grad-accum`: the float32 gradient sum alive through the micro-batches (see grad-accum.ts); 0 without. */
  accumulatedGrads?: number;
}

export interface PlannedActivations {
  choice: ActivationChoice;
  strategies: ActivationStrategy[];
  predictedActivationBytes: number;
  predictedPeakBytes: number;
  /** Tied partial gradients waiting at the peak, where the planner predicted them (else the report counts all). */
  tiedWaitingBytes?: number;
}

/** MsT chunk counts for `spec` over N rows of length T: the user's, else the package's defaults `f` times finer. */
function mstChunksFor(
  spec: NonNullable<ActivationSpec['mst']>,
  config: GPTConfig,
  N: number,
  T: number,
  f = 1,
) {
  const def = mstChunks(config, N, f);
  return {
    mlpChunks: spec.mlpChunks ?? spec.chunks ?? def.mlpChunks,
    attentionChunk: spec.attentionChunk ?? (spec.chunks ? Math.ceil(T / spec.chunks) : def.attentionChunk),
    lossChunks: spec.lossChunks ?? spec.chunks ?? def.lossChunks,
  };
}

/** The strategies for a choice (the checkpoint plan as explicit segments, MsT with explicit chunks). */
export function strategiesFor(choice: ActivationChoice, spec: ActivationSpec): ActivationStrategy[] {
  const out: ActivationStrategy[] = [];
  if (spec.checkpoint) {
    out.push(
      checkpoint({
        ...(choice.segments && choice.segmentsBy === 'checkpoint'
          ? { plan: choice.segments }
          : { plan: 'selective' as const }),
        selective: choice.selective,
      }),
    );
  }
  if (choice.mst) out.push(mst({ ...choice.mst }));
  if (choice.compress) out.push(compress({ format: choice.compress }));
  if (choice.offload) out.push(offload());
  return out;
}

/**
 * The strategies `spec` names, with their open parameters at the defaults (checkpoint `sqrt` unless `selective`
 * alone, MsT's own chunking): enough for core to decide the mode before any plan is chosen.
 */
function namedStrategies(spec: ActivationSpec): ActivationStrategy[] {
  const { mst: chunks, compress: comp } = spec;
  const ckpt = namedCheckpoint(spec);
  return [
    ...(ckpt ? [ckpt] : []),
    ...(chunks ? [mst({ ...chunks })] : []),
    ...(comp ? [compress({ format: comp.format })] : []),
    ...(spec.offload ? [offload()] : []),
  ];
}

/** `spec`'s checkpoint strategy, its plan left at the default when open. */
function namedCheckpoint({ checkpoint: ckpt }: ActivationSpec): ActivationStrategy | undefined {
  return (
    ckpt && checkpoint({ ...(ckpt.plan !== undefined ? { plan: ckpt.plan } : {}), selective: ckpt.selective })
  );
}

/**
 * The engine mode for `spec`: `requested` (--mode), or segmented when a named strategy recomputes segments (core's
 * rule: `activationMode`), else `fallback`. InputError naming --activations and --mode full when they contradict.
 */
export function activationModeFor(
  spec: ActivationSpec,
  requested: EngineMode | undefined,
  fallback: EngineMode = 'full',
): EngineMode {
  return activationMode(namedStrategies(spec), requested, fallback, {
    what: `--activations ${describeSpec(spec)}`,
    fullMode: '--mode full',
    fix: 'drop --mode full (checkpoint plans and compress select segmented mode) or use checkpoint:selective alone',
    code: 'E_CONFIG',
  });
}

/**
 * Decide every open parameter of `spec` for a run of `batch` × `seq`. Without a budget: the defaults (checkpoint
 * `sqrt`, MsT's rules). With one: among the candidate plans (every:K for each K, sqrt, with and without selective
 * recompute) and MsT chunkings (the defaults ×1, 2, 4, … finer), the cheapest whose predicted step peak fits
 * (coarsest MsT chunking, then no selective recompute, then fewest segments, then smallest peak); InputError naming the smallest predicted peak and what to try when none does.
 */
export function planActivations(args: {
  spec: ActivationSpec;
  config: GPTConfig;
  batch: number;
  seq: number;
  backend: ActivationBackend;
  userMode: 'full' | 'segmented' | undefined;
  defaultSegments: number[][] | undefined;
  fixed: FixedBytes;
  budget?: number;
}): PlannedActivations {
  const { spec, config, batch, seq, backend, fixed, budget } = args;
  const nStages = config.nLayer + 2;
  const mode = activationModeFor(spec, args.userMode, args.defaultSegments ? 'segmented' : 'full');
  // The checkpoint strategy plans segments (every form but `selective` alone): its plan is among the candidates.
  const ckpt = namedCheckpoint(spec);
  const segmentedCkpt = ckpt !== undefined && recomputesSegments(ckpt);
  // Candidate plans: the user's, or (budget) every:K for K = L … 1 and sqrt; none for MsT/compress alone.
  const plans: Array<number[][] | undefined> = [];
  if (spec.checkpoint?.plan !== undefined) plans.push(planSegments(spec.checkpoint.plan, nStages));
  else if (segmentedCkpt) {
    if (budget === undefined) plans.push(planSegments('sqrt', nStages));
    else {
      plans.push(planSegments('sqrt', nStages));
      for (let k = config.nLayer; k >= 1; k--) plans.push(planSegments(`every:${k}`, nStages));
    }
  } else plans.push(mode === 'segmented' ? args.defaultSegments : undefined);
  // MsT's chunked attention already saves only q, k, v: selective recompute is only a candidate without it.
  const selectives = spec.checkpoint?.selective
    ? [true]
    : spec.checkpoint && !spec.mst && budget !== undefined
      ? [false, true]
      : [false];
  const factors =
    spec.mst && budget !== undefined && spec.mst.chunks === undefined ? [1, 2, 4, 8, 16, 32, 64] : [1];
  let best: PlannedActivations | undefined;
  let smallest = Number.POSITIVE_INFINITY;
  // Cost order: coarser MsT chunking first, then no selective recompute, then the plan with the fewest segments.
  for (const f of factors) {
    for (const selective of selectives) {
      for (const segments of plans) {
        const choice: ActivationChoice = {
          mode,
          ...(segments ? { segments, segmentsBy: segmentedCkpt ? 'checkpoint' : 'engine' } : {}),
          selective,
          ...(spec.mst ? { mst: mstChunksFor(spec.mst, config, batch * seq, seq, f) } : {}),
          ...(spec.compress ? { compress: spec.compress.format } : {}),
          ...(spec.offload ? { offload: true } : {}),
        };
        const act = predictChoiceActivations(config, choice, batch, seq, backend);
        const peak =
          fixed.params +
          fixed.optimizerState +
          act +
          fixed.waitingGrads(segments) +
          (fixed.accumulatedGrads ?? 0);
        smallest = Math.min(smallest, peak);
        if (budget === undefined || peak <= budget) {
          // Fewest segments first (every plan recomputes each block once; fewer segments = fewer, larger kernels),
          // then the smallest peak.
          const n = segments?.length ?? 0;
          const bestN = best?.choice.segments?.length ?? 0;
          if (!best || n < bestN || (n === bestN && peak < best.predictedPeakBytes)) {
            best = { choice, strategies: [], predictedActivationBytes: act, predictedPeakBytes: peak };
          }
        }
        if (budget === undefined) break;
      }
      if (best) break;
    }
    if (best) break;
  }
  if (!best) {
    throw new InputError(
      `memory budget ${budget!.toLocaleString('en-US')} bytes cannot hold a step of batch ${batch} × seq ${seq}: the smallest predicted peak with activations '${describeSpec(spec) || 'none'}' is ${Math.round(smallest).toLocaleString('en-US')} bytes (parameters ${fixed.params.toLocaleString('en-US')}, optimizer state ${fixed.optimizerState.toLocaleString('en-US')}); try --activations checkpoint,mst,compress:int8, a smaller --batch or --seq, or a larger --memory-budget`,
      'E_MEMORY_BUDGET',
    );
  }
  best.strategies = strategiesFor(best.choice, spec);
  return best;
}

export function describeSpec(spec: ActivationSpec): string {
  const parts: string[] = [];
  if (spec.checkpoint) {
    const p = spec.checkpoint.plan;
    const plan = p === undefined ? '' : Array.isArray(p) ? JSON.stringify(p) : p;
    parts.push(
      `checkpoint${plan || spec.checkpoint.selective ? ':' : ''}${plan}${spec.checkpoint.selective ? (plan ? '+selective' : 'selective') : ''}`,
    );
  }
  if (spec.mst) parts.push(spec.mst.chunks ? `mst:${spec.mst.chunks}` : 'mst');
  if (spec.compress) parts.push(`compress:${spec.compress.format}`);
  if (spec.offload) parts.push('offload');
  return parts.join(',');
}
