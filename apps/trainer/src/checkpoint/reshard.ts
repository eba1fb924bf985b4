import {
  CheckpointError,
  decodePayload,
  float32Values,
  MODEL_FILE,
  modelShardFile,
  optimizerFile,
  optimizerTensors,
  type StateHolder,
  setOptimizerState,
} from '@kstar/checkpoint';
import { concatBytes, type SafeTensor, type SafetensorsFile, type ZeroStage } from '@kstar/core';
import { packArray, unpackArray } from '@kstar/kernels';
import type { Split24Plugin, Split24State } from '@kstar/master-split24';
import { rowRange, type ZeroPlugin } from '@kstar/shard-zero';
import * as tf from '@tensorflow/tfjs';
import { type ShardingName, stageOf } from '../sharding.ts';
import type { LoadedCheckpoint } from './read.ts';
import { shardState } from './sharded.ts';
import { checkWeightsFormat, SPLIT24_SHARDS, splitWordsOf } from './state.ts';

/**
 * Resuming a checkpoint under another layout than the one that wrote it: N ZeRO ranks → M ranks, a ZeRO run → one
 * process, one process → ZeRO, or another ZeRO stage. The reader has every rank's files (`readCheckpoint` reads them
 * all when the rank count differs).
 *
 * - Weights: the whole stored form first (`model.safetensors`, or a ZeRO-3 run's shards joined in rank order: ranks
 *   own consecutive rows, or a tensor whole), then this rank's part (ZeRO-3: its rows or whole tensors; otherwise all
 *   of it). split24 words are unpacked to their 16-bit halves and 8-bit corrections, cut and packed again: every bit
 *   is kept, nothing goes through float32.
 * - Optimizer state: a row-owned parameter's state entries are the single-process entries' consecutive slices
 *   (`stateRows`: parameter-shaped entries by rows, packed ones by their flat elements), so the saved ranks' pieces,
 *   joined in rank order, are the whole entry; this rank's slice starts at its first row's element over the entry's
 *   ratio. ZeRO aligns every rank's rows to whole units of every entry (`rowAlignment`: whole 8-bit quantization
 *   blocks, whole packed words), so 8-bit codes and their block absmax are cut at block boundaries and stay exactly
 *   what they were; a start inside a unit is refused. A whole-owned parameter's state is in its saved owner's file.
 */

/** Where a run's state lives: its rank count and ZeRO stage (null: no sharding). */
export interface RunLayout {
  ranks: number;
  stage: ZeroStage | null;
}

/** The layout of the run that wrote `resume`. */
export function savedLayout(resume: LoadedCheckpoint): RunLayout {
  const sharding = resume.trainer.config.sharding as ShardingName | undefined;
  return { ranks: resume.manifest.world.size, stage: stageOf(sharding) };
}

/** Whether `run` reads the checkpoint as it was written (same ranks, same stage): each rank restores its own files. */
export function sameLayout(resume: LoadedCheckpoint, run: RunLayout): boolean {
  const saved = savedLayout(resume);
  return saved.ranks === run.ranks && saved.stage === run.stage;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const bytesOf = (a: Int32Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** One rank's piece of a parameter: its shape and values (float32 bytes, or split24 halves and corrections unpacked). */
interface Piece {
  shape: number[];
  f32?: Uint8Array;
  hi?: Int32Array;
  lo?: Int32Array;
}

function joinInts(parts: readonly Int32Array[]): Int32Array {
  return new Int32Array(concatBytes(parts.map(bytesOf)).slice().buffer);
}

/**
 * The checkpoint's whole weights in `model.safetensors`' form (format 'float32', or 'split24' words with
 * `metadata.shapes`): that file, or a ZeRO-3 checkpoint's parameter shards (`model.rank{r}.safetensors` of every rank)
 * joined along rows in rank order.
 */
export function wholeModelFile(resume: LoadedCheckpoint): { file: SafetensorsFile; origin: string } {
  const whole = resume.files.get(MODEL_FILE);
  if (whole) {
    const origin = `${resume.dir}/${MODEL_FILE}`;
    return { file: decodePayload(whole, origin), origin };
  }
  const ranks = resume.manifest.world.size;
  const pieces = new Map<string, Piece[]>();
  let words = false;
  for (let r = 0; r < ranks; r++) {
    const bytes = resume.files.get(modelShardFile(r));
    if (!bytes) {
      throw new CheckpointError(
        `checkpoint '${resume.dir}' holds neither ${MODEL_FILE} nor ${modelShardFile(r)}: read it with every rank's files (EVERY_RANK), or it is not a ZeRO-3 checkpoint of ${ranks} ranks`,
      );
    }
    const origin = `${resume.dir}/${modelShardFile(r)}`;
    const file = decodePayload(bytes, origin);
    const add = (name: string, p: Piece) => pieces.set(name, [...(pieces.get(name) ?? []), p]);
    if (file.metadata.format === SPLIT24_SHARDS) {
      words = true;
      const shapes: Record<string, number[]> = JSON.parse(file.metadata.shapes ?? '{}');
      for (const [name, shape] of Object.entries(shapes)) {
        const w = splitWordsOf(file, origin, name, shape);
        const n = numel(shape);
        add(name, { shape, hi: unpackArray(w.hi, n, 16), lo: unpackArray(w.lo, n, 8) });
      }
      continue;
    }
    for (const [name, t] of file.tensors) {
      if (t.dtype !== 'F32')
        throw new CheckpointError(`${origin}: the shard of '${name}' is ${t.dtype}, not F32`);
      add(name, { shape: [...t.shape], f32: t.data });
    }
  }
  const origin = `${resume.dir}/${modelShardFile(0)}…${modelShardFile(ranks - 1)}`;
  const entries = new Map<string, SafeTensor>();
  const shapes: Record<string, number[]> = {};
  for (const [name, list] of pieces) {
    const rest = list[0]!.shape.slice(1);
    for (const p of list) {
      if (p.shape.slice(1).join() !== rest.join()) {
        throw new CheckpointError(
          `${origin}: the shards of '${name}' have rows [${p.shape.slice(1)}] and [${rest}]: a file is damaged or from another model`,
        );
      }
    }
    const shape = [list.reduce((n, p) => n + (p.shape[0] ?? 1), 0), ...rest];
    if (!words) {
      entries.set(name, { dtype: 'F32', shape, data: concatBytes(list.map((p) => p.f32!)) });
      continue;
    }
    shapes[name] = shape;
    const hi = packArray(joinInts(list.map((p) => p.hi!)), 16);
    const lo = packArray(joinInts(list.map((p) => p.lo!)), 8);
    entries.set(`${name}/bf16`, { dtype: 'I32', shape: [hi.length], data: bytesOf(hi) });
    entries.set(`${name}/bf16_correction`, { dtype: 'I32', shape: [lo.length], data: bytesOf(lo) });
  }
  const metadata: Record<string, string> = words
    ? { format: 'split24', shapes: JSON.stringify(shapes) }
    : { format: 'float32' };
  return { file: { tensors: entries, metadata }, origin };
}

/** The part of a parameter of `shape` that `rank` keeps at ZeRO-3: rows [r0, r0 + n), or none. */
function heldRows(sharding: ZeroPlugin, name: string, rank: number): { r0: number; n: number } | undefined {
  const o = sharding.attached?.ownership.get(name);
  if (!o) return undefined;
  if (o.kind === 'rows') {
    const range = rowRange(o, rank);
    return range.n > 0 ? range : undefined;
  }
  return o.owner === rank ? { r0: 0, n: o.shape[0] ?? 1 } : undefined;
}

/**
 * ZeRO-3: writes this rank's parameter shards (its rows, or the tensors it owns whole) cut from the whole weights
 * (`wholeModelFile`) into the engine: split24 words into `split`, bit for bit; float32 through `writeShard`.
 */
export function restoreRankShards(
  whole: { file: SafetensorsFile; origin: string },
  sharding: ZeroPlugin,
  split?: Split24Plugin,
): void {
  const { file, origin } = whole;
  const attached = sharding.attached;
  if (!attached) throw new Error('restoreRankShards: the ZeRO plugin is not attached to an engine');
  checkWeightsFormat(file.metadata.format, origin, split);
  const shapes: Record<string, number[]> = split ? JSON.parse(file.metadata.shapes ?? '{}') : {};
  const rank = sharding.collective.rank;
  const state: Split24State = {};
  for (const [name, o] of attached.ownership) {
    const held = heldRows(sharding, name, rank);
    if (!held) continue;
    const rowElems = numel(o.shape) / (o.shape[0] ?? 1);
    const e0 = held.r0 * rowElems;
    const e1 = e0 + held.n * rowElems;
    const shape = [held.n, ...o.shape.slice(1)];
    const saved = split ? shapes[name] : file.tensors.get(name)?.shape;
    if (saved?.join() !== o.shape.join()) {
      throw new CheckpointError(
        `${origin}: parameter '${name}' is [${saved ?? 'missing'}], the model's is [${o.shape}]: it is from another model`,
      );
    }
    if (split) {
      const w = splitWordsOf(file, origin, name, o.shape);
      const n = numel(o.shape);
      state[name] = {
        shape,
        hi: packArray(unpackArray(w.hi, n, 16).subarray(e0, e1), 16),
        lo: packArray(unpackArray(w.lo, n, 8).subarray(e0, e1), 8),
      };
      continue;
    }
    const t = file.tensors.get(name)!;
    if (t.dtype !== 'F32') throw new CheckpointError(`${origin}: parameter '${name}' is ${t.dtype}, not F32`);
    const value = tf.tensor(float32Values(t).subarray(e0, e1), shape);
    try {
      attached.writeShard(name, value);
    } finally {
      value.dispose();
    }
  }
  split?.setState(state);
}

/**
 * Replaces `holder`'s optimizer state (an engine's, or this rank's ZeRO shard of it through `sharding`) with its part of
 * the state every saved rank wrote (see the file comment): the pieces of each entry joined in rank order, then cut at
 * this rank's first element.
 */
export function restoreResharded(resume: LoadedCheckpoint, holder: StateHolder, sharding?: ZeroPlugin): void {
  const ranks = resume.manifest.world.size;
  const files: Array<Map<string, Map<string, SafeTensor>>> = [];
  for (let r = 0; r < ranks; r++) {
    const bytes = resume.files.get(optimizerFile(r));
    if (!bytes) {
      throw new CheckpointError(
        `checkpoint '${resume.dir}' lists no ${optimizerFile(r)}: a checkpoint of ${ranks} ranks needs every rank's file`,
      );
    }
    files.push(optimizerTensors(bytes, `${resume.dir}/${optimizerFile(r)}`, holder.optimizer.name));
  }
  const origin = `${resume.dir}/${optimizerFile(0)}…${optimizerFile(ranks - 1)}`;
  const rank = sharding?.collective.rank ?? 0;
  const out = new Map<string, Map<string, SafeTensor>>();
  for (const name of holder.stateNames()) {
    const o = sharding?.attached?.ownership.get(name);
    const mine = new Map<string, SafeTensor>();
    for (const [key, target] of Object.entries(holder.stateOf(name)!)) {
      // Elements of the whole entry, and where this rank's slice starts (both in the entry's own elements).
      let whole = target.size;
      let start = 0;
      if (o?.kind === 'rows') {
        const ratio = o.layout[key];
        if (ratio === undefined) {
          throw new CheckpointError(
            `${origin}: state '${key}' of '${name}' has no row layout: it cannot be re-partitioned`,
          );
        }
        const e0 = rowRange(o, rank).r0 * o.rowElems;
        if (e0 % ratio !== 0) {
          throw new CheckpointError(
            `${origin}: rank ${rank}'s rows of '${name}' start at element ${e0}, inside a ${ratio}-element unit of its '${key}' state (a quantization block or packed word): resume with a rank count whose row ranges keep those units whole`,
          );
        }
        whole = Math.ceil(numel(o.shape) / ratio);
        start = e0 / ratio;
      }
      const parts: SafeTensor[] = [];
      let held = 0;
      for (const f of files) {
        const t = f.get(name)?.get(key);
        if (!t) continue;
        parts.push(t);
        held += t.data.byteLength / 4;
        if (held >= whole) break; // a replicated state (one process, stage 0) is whole in the first file
      }
      const dtype = target.dtype === 'int32' ? 'I32' : 'F32';
      if (held !== whole || parts.some((t) => t.dtype !== dtype)) {
        throw new CheckpointError(
          `${origin}: the saved '${name}::${key}' state holds ${held} ${parts[0]?.dtype ?? dtype} elements over ${ranks} rank files, the run needs ${whole} ${dtype}: a file is damaged or from another run`,
        );
      }
      const data = concatBytes(parts.map((t) => t.data)).subarray(4 * start, 4 * (start + target.size));
      mine.set(key, { dtype, shape: target.shape, data });
    }
    out.set(name, mine);
  }
  setOptimizerState(out, origin, holder);
}

/**
 * Restores a checkpoint written under another layout (`sameLayout` false) into an engine built over `sharding` (or
 * none: one process): the optimizer state re-partitioned; at ZeRO-3 this rank's parameter shards (stages 0-2 and one
 * process restore the whole weights before building the engine, from `wholeModelFile`). Returns a line for the log.
 */
export function restoreOtherLayout(
  resume: LoadedCheckpoint,
  engine: StateHolder,
  sharding?: ZeroPlugin,
  split?: Split24Plugin,
): string {
  restoreResharded(resume, sharding ? shardState(sharding, engine.optimizer.name) : engine, sharding);
  if (sharding?.stage === 3) restoreRankShards(wholeModelFile(resume), sharding, split);
  const name = (l: RunLayout) =>
    `${l.ranks} rank${l.ranks === 1 ? '' : 's'}${l.stage === null ? '' : ` zero${l.stage}`}`;
  const now: RunLayout = { ranks: sharding?.collective.size ?? 1, stage: sharding?.stage ?? null };
  return `re-partitioned from ${name(savedLayout(resume))} to ${name(now)}`;
}
