import type { OptimizerState } from '@kstar/core';
import { stateVariable } from '@kstar/core';
import type { GPTModel, SafeTensor, SafetensorsFile } from '@kstar/gpt';
import type { Split24Plugin, Split24State } from '@kstar/master-split24';
import * as tf from '@tensorflow/tfjs';
import { CheckpointError } from './format.ts';
import { decodePayload, encodePayload } from './payload.ts';

/** Separates a parameter's name from its state key in the optimizer file (`h0.attn.wqkv::m`). */
const KEY_SEP = '::';

/** A tensor file's entries and metadata, copied to host memory and not yet encoded (`encodePayload*` encodes it). */
export interface TensorSnapshot {
  entries: Array<[string, SafeTensor]>;
  metadata: Record<string, string>;
}

/** Backends whose `data()` is a fresh array read from the device (backend-cuda's `readSync`), not their storage. */
const FRESH_READS = new Set(['cuda']);

/**
 * Host copies of `tensors` in their stored dtype: every read started at once and awaited together (one wait for the
 * device, not one per tensor), each copied out at once where the backend may hand back its own storage (cpu, wasm:
 * the next step's in-place kernels overwrite it); cuda's reads are fresh arrays already.
 */
async function hostCopies(tensors: ReadonlyArray<tf.Tensor>): Promise<SafeTensor[]> {
  for (const t of tensors) {
    if (t.dtype !== 'float32' && t.dtype !== 'int32') {
      throw new CheckpointError(`cannot save a ${t.dtype} state tensor: only float32 and int32 are stored`);
    }
  }
  const values = (await Promise.all(tensors.map((t) => t.data()))) as Array<Float32Array | Int32Array>;
  const fresh = FRESH_READS.has(tf.getBackend());
  return tensors.map((t, i) => {
    const v = values[i]!;
    return {
      dtype: t.dtype === 'float32' ? 'F32' : 'I32',
      shape: [...t.shape],
      data: fresh
        ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
        : new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)),
    };
  });
}

/**
 * The weights in their stored form: float32 variables as `F32`, or split24's packed words (`NAME/bf16`,
 * `NAME/bf16_correction`, `I32`) with `metadata.shapes` holding each parameter's shape.
 */
export async function snapshotWeights(model: GPTModel, split?: Split24Plugin): Promise<TensorSnapshot> {
  const entries: Array<[string, SafeTensor]> = [];
  if (!split) {
    const names = [...model.variables.keys()];
    const copies = await hostCopies([...model.variables.values()]);
    for (const [i, name] of names.entries()) entries.push([name, copies[i]!]);
    return { entries, metadata: { format: 'float32' } };
  }
  const state = await split.getState();
  const shapes = pushSplitWords(entries, state);
  // Variables the plugin does not hold (no stage reads them) stay float32.
  const rest = [...model.variables].filter(([name, v]) => !(name in state) && !v.isDisposed);
  const copies = await hostCopies(rest.map(([, v]) => v));
  for (const [i, [name]] of rest.entries()) entries.push([name, copies[i]!]);
  return { entries, metadata: { format: 'split24', shapes: JSON.stringify(shapes) } };
}

/** `snapshotWeights`, encoded (format 2). */
export async function encodeWeights(model: GPTModel, split?: Split24Plugin): Promise<Uint8Array> {
  const { entries, metadata } = await snapshotWeights(model, split);
  return encodePayload(entries, metadata);
}

/**
 * Appends split24's packed words to `entries` (`NAME/bf16`, `NAME/bf16_correction`, `I32`); returns each parameter's
 * shape (for `metadata.shapes`).
 */
export function pushSplitWords(
  entries: Array<[string, SafeTensor]>,
  state: Split24State,
): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  const bytes = (a: Int32Array) => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
  for (const [name, s] of Object.entries(state)) {
    shapes[name] = s.shape;
    entries.push([`${name}/bf16`, { dtype: 'I32', shape: [s.hi.length], data: bytes(s.hi) }]);
    entries.push([`${name}/bf16_correction`, { dtype: 'I32', shape: [s.lo.length], data: bytes(s.lo) }]);
  }
  return shapes;
}

/** The packed words of parameter `name` [shape] as `pushSplitWords` wrote them (copies). */
export function splitWordsOf(
  file: SafetensorsFile,
  origin: string,
  name: string,
  shape: readonly number[],
): Split24State[string] {
  const hi = file.tensors.get(`${name}/bf16`);
  const lo = file.tensors.get(`${name}/bf16_correction`);
  if (hi?.dtype !== 'I32' || lo?.dtype !== 'I32') {
    throw new CheckpointError(`${origin} lacks the split24 words (I32) of parameter '${name}'`);
  }
  return { shape: [...shape], hi: i32(hi), lo: i32(lo) };
}

const f32 = (t: SafeTensor) => new Float32Array(t.data.slice().buffer);
const i32 = (t: SafeTensor) => new Int32Array(t.data.slice().buffer);

/**
 * Restores weights written by `encodeWeights` into `model` (float32) or into `split` (before the engine adopts the
 * model's variables). Call before building the engine.
 */
export function restoreWeights(
  bytes: Uint8Array,
  origin: string,
  model: GPTModel,
  split?: Split24Plugin,
): void {
  const file = decodePayload(bytes, origin);
  const format = file.metadata.format;
  if ((format === 'split24') !== (split !== undefined)) {
    throw new CheckpointError(
      `${origin} holds ${format} weights but the run keeps ${split ? 'split24' : 'float32'} weights: pass --master-weights ${format === 'split24' ? 'split24' : 'fp32'}`,
    );
  }
  const shapes: Record<string, number[]> = split ? JSON.parse(file.metadata.shapes ?? '{}') : {};
  const splitState: Split24State = {};
  for (const [name, v] of model.variables) {
    if (split && name in shapes) {
      if (shapes[name]!.join() !== v.shape.join()) {
        throw new CheckpointError(
          `${origin}: parameter '${name}' has shape [${shapes[name]}], the model's is [${v.shape}]`,
        );
      }
      splitState[name] = splitWordsOf(file, origin, name, v.shape);
      continue;
    }
    const t = file.tensors.get(name);
    if (!t) throw new CheckpointError(`${origin} lacks parameter '${name}'`);
    if (t.dtype !== 'F32' || t.shape.join() !== v.shape.join()) {
      throw new CheckpointError(
        `${origin}: parameter '${name}' is ${t.dtype} [${t.shape}], the model's is F32 [${v.shape}]`,
      );
    }
    tf.tidy(() => v.assign(tf.tensor(f32(t), v.shape)));
  }
  split?.setState(splitState);
}

/**
 * Who holds optimizer state: the engine (every parameter's), or under ZeRO a rank's shard of it (its owned rows or
 * whole tensors).
 */
export interface StateHolder {
  readonly optimizer: { readonly name: string };
  stateNames(): string[];
  stateOf(name: string): OptimizerState | undefined;
  setStateOf(name: string, state: OptimizerState): void;
}

/** Every parameter's optimizer state as the plugin stores it (`PARAM::KEY`), nothing expanded. */
export async function snapshotOptimizerState(engine: StateHolder): Promise<TensorSnapshot> {
  const names: string[] = [];
  const tensors: tf.Tensor[] = [];
  for (const name of engine.stateNames()) {
    const state = engine.stateOf(name)!;
    for (const key of Object.keys(state).sort()) {
      names.push(`${name}${KEY_SEP}${key}`);
      tensors.push(state[key]!);
    }
  }
  const copies = await hostCopies(tensors);
  return {
    entries: names.map((n, i): [string, SafeTensor] => [n, copies[i]!]),
    metadata: { optimizer: engine.optimizer.name },
  };
}

/** `snapshotOptimizerState`, encoded (format 2). */
export async function encodeOptimizerState(engine: StateHolder): Promise<Uint8Array> {
  const { entries, metadata } = await snapshotOptimizerState(engine);
  return encodePayload(entries, metadata);
}

/** Replaces the engine's optimizer state with the saved one (checked against the engine's parameters). */
export function restoreOptimizerState(bytes: Uint8Array, origin: string, engine: StateHolder): void {
  const file = decodePayload(bytes, origin);
  if (file.metadata.optimizer !== engine.optimizer.name) {
    throw new CheckpointError(
      `${origin} holds '${file.metadata.optimizer}' state, the run uses '${engine.optimizer.name}': pass --optimizer ${file.metadata.optimizer}`,
    );
  }
  const byParam = new Map<string, Array<[string, SafeTensor]>>();
  for (const [full, t] of file.tensors) {
    const at = full.lastIndexOf(KEY_SEP);
    const name = full.slice(0, at);
    if (!byParam.has(name)) byParam.set(name, []);
    byParam.get(name)!.push([full.slice(at + KEY_SEP.length), t]);
  }
  for (const name of engine.stateNames()) {
    const saved = byParam.get(name) ?? [];
    if (saved.length === 0 && Object.keys(engine.stateOf(name)!).length > 0) {
      throw new CheckpointError(`${origin} holds no optimizer state for parameter '${name}'`);
    }
    const state: OptimizerState = {};
    for (const [key, t] of saved) {
      // Variables made inside a tidy (refCount 1): in-place kernels may write them.
      state[key] =
        t.dtype === 'I32'
          ? stateVariable(`${name}/${key}`, t.shape, { values: i32(t), dtype: 'int32' })
          : stateVariable(`${name}/${key}`, t.shape, { values: f32(t) });
    }
    engine.setStateOf(name, state);
  }
}
