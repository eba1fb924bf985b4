import { type OptimizerState, type SafeTensor, stateVariable } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError } from './format.ts';
import { decodePayload, encodePayload } from './payload.ts';

/** Separates a parameter's name from its state key in an optimizer file (`h0.attn.wqkv::m`). */
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
export async function hostCopies(tensors: ReadonlyArray<tf.Tensor>): Promise<SafeTensor[]> {
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

/** Named tensors (float32 or int32) copied to host memory as a file's entries (`hostCopies`). */
export async function snapshotTensors(
  named: Iterable<readonly [string, tf.Tensor]>,
  metadata: Record<string, string> = {},
): Promise<TensorSnapshot> {
  const list = [...named];
  const copies = await hostCopies(list.map(([, t]) => t));
  return { entries: list.map(([name], i): [string, SafeTensor] => [name, copies[i]!]), metadata };
}

/** A stored tensor's values (copies, so the file's buffer may go). */
export const float32Values = (t: SafeTensor) => new Float32Array(t.data.slice().buffer);
export const int32Values = (t: SafeTensor) => new Int32Array(t.data.slice().buffer);

/**
 * Who holds optimizer state: an engine (every parameter's), or under ZeRO a rank's shard of it (its owned rows or
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
  const named: Array<[string, tf.Tensor]> = [];
  for (const name of engine.stateNames()) {
    const state = engine.stateOf(name)!;
    for (const key of Object.keys(state).sort()) named.push([`${name}${KEY_SEP}${key}`, state[key]!]);
  }
  return snapshotTensors(named, { optimizer: engine.optimizer.name });
}

/** `snapshotOptimizerState`, encoded (format 2). */
export async function encodeOptimizerState(engine: StateHolder): Promise<Uint8Array> {
  const { entries, metadata } = await snapshotOptimizerState(engine);
  return encodePayload(entries, metadata);
}

/** Replaces the holder's optimizer state with the saved one (checked against its parameters). */
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
          ? stateVariable(`${name}/${key}`, t.shape, { values: int32Values(t), dtype: 'int32' })
          : stateVariable(`${name}/${key}`, t.shape, { values: float32Values(t) });
    }
    engine.setStateOf(name, state);
  }
}
