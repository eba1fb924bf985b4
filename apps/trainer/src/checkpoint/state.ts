import {
  CheckpointError,
  decodePayload,
  encodePayload,
  float32Values,
  hostCopies,
  int32Values,
  type SnapshotOptions,
  snapshotTensors,
  type TensorSnapshot,
} from '@kstar/checkpoint';
import type { SafeTensor, SafetensorsFile } from '@kstar/core';
import type { GPTModel } from '@kstar/gpt';
import type { Split24Plugin, Split24State } from '@kstar/master-split24';
import * as tf from '@tensorflow/tfjs';

/**
 * The trainer's side of the tensor files: the GPT's weights, float32 or in split24's stored form. The optimizer
 * state's codec (`snapshotOptimizerState`, `restoreOptimizerState`) is `@kstar/checkpoint`'s.
 */

/**
 * The weights in their stored form: float32 variables as `F32`, or split24's packed words (`NAME/bf16`,
 * `NAME/bf16_correction`, `I32`) with `metadata.shapes` holding each parameter's shape. With `staged` (float32
 * weights), the entries may be views into the backend's staging memory: call the snapshot's `release` once encoded.
 */
export async function snapshotWeights(
  model: GPTModel,
  split?: Split24Plugin,
  options: SnapshotOptions = {},
): Promise<TensorSnapshot> {
  if (!split) return snapshotTensors(model.variables, { format: 'float32' }, options);
  const entries: Array<[string, SafeTensor]> = [];
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
  return { shape: [...shape], hi: int32Values(hi), lo: int32Values(lo) };
}

/** The stored form of a ZeRO-3 rank's parameter shards under split24 (`model.rank{r}.safetensors`' metadata.format). */
export const SPLIT24_SHARDS = 'split24-shards';

/** A weights file's format (`metadata.format`) must match the run's weights: split24 words for `split`, else float32. */
export function checkWeightsFormat(format: string | undefined, origin: string, split?: Split24Plugin): void {
  if ((format === 'split24') !== (split !== undefined)) {
    throw new CheckpointError(
      `${origin} holds ${format} weights but the run keeps ${split ? 'split24' : 'float32'} weights: pass --master-weights ${format === 'split24' ? 'split24' : 'fp32'}`,
    );
  }
}

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
  restoreWeightsFile(decodePayload(bytes, origin), origin, model, split);
}

/** `restoreWeights` of a decoded weights file (a `model.safetensors`, or a ZeRO-3 checkpoint's shards joined). */
export function restoreWeightsFile(
  file: SafetensorsFile,
  origin: string,
  model: GPTModel,
  split?: Split24Plugin,
): void {
  checkWeightsFormat(file.metadata.format, origin, split);
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
    tf.tidy(() => v.assign(tf.tensor(float32Values(t), v.shape)));
  }
  split?.setState(splitState);
}
