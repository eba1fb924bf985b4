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
  /**
   * Where the entries are views into a backend's reusable staging memory (`{ staged: true }`): returns that
   * memory; the entries must not be read after it. Absent where the entries are the snapshot's own copies.
   */
  release?(): void;
}

/** Whether a snapshot may hold views into the backend's reusable staging memory (see `stagedHostCopies`). */
export interface SnapshotOptions {
  staged?: boolean;
}

/**
 * A backend that copies many tensors to host memory in one batch (backend-cuda: one stream-ordered batch of copies
 * into pinned staging memory, one synchronisation). Found by its method, so this package depends on no backend.
 */
interface BatchedHostReader {
  readToPinnedHost(dataIds: readonly object[]): { views: Uint8Array[]; release(): void };
}

/** Host copies and what to call once they are no longer read. */
export interface StagedCopies {
  copies: SafeTensor[];
  release(): void;
}

/** Backends whose `data()` is a fresh array read from the device (backend-cuda's `readSync`), not their storage. */
const FRESH_READS = new Set(['cuda']);

/**
 * Host copies of `tensors` in their stored dtype: every read started at once and awaited together (one wait for the
 * device, not one per tensor), each copied out at once where the backend may hand back its own storage (cpu, wasm:
 * the next step's in-place kernels overwrite it); cuda's reads are fresh arrays already.
 */
export async function hostCopies(tensors: ReadonlyArray<tf.Tensor>): Promise<SafeTensor[]> {
  checkStoredDtypes(tensors);
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

function checkStoredDtypes(tensors: ReadonlyArray<tf.Tensor>): void {
  for (const t of tensors) {
    if (t.dtype !== 'float32' && t.dtype !== 'int32') {
      throw new CheckpointError(`cannot save a ${t.dtype} state tensor: only float32 and int32 are stored`);
    }
  }
}

/**
 * `hostCopies` through the backend's batched read where it has one (cuda: pinned staging, reused across calls, so
 * the copies are views valid until `release()`); elsewhere `hostCopies` and a `release` that does nothing.
 */
export async function stagedHostCopies(tensors: ReadonlyArray<tf.Tensor>): Promise<StagedCopies> {
  checkStoredDtypes(tensors);
  const backend = tf.backend() as Partial<BatchedHostReader>;
  if (typeof backend.readToPinnedHost !== 'function')
    return { copies: await hostCopies(tensors), release() {} };
  const staged = backend.readToPinnedHost(tensors.map((t) => t.dataId));
  return {
    copies: tensors.map((t, i) => ({
      dtype: t.dtype === 'float32' ? 'F32' : 'I32',
      shape: [...t.shape],
      data: staged.views[i]!,
    })),
    release: () => staged.release(),
  };
}

/**
 * Named tensors (float32 or int32) copied to host memory as a file's entries (`hostCopies`; with `staged`,
 * `stagedHostCopies`: call the snapshot's `release` once it is encoded).
 */
export async function snapshotTensors(
  named: Iterable<readonly [string, tf.Tensor]>,
  metadata: Record<string, string> = {},
  options: SnapshotOptions = {},
): Promise<TensorSnapshot> {
  const list = [...named];
  const tensors = list.map(([, t]) => t);
  const { copies, release } = options.staged
    ? await stagedHostCopies(tensors)
    : { copies: await hostCopies(tensors), release: undefined };
  return {
    entries: list.map(([name], i): [string, SafeTensor] => [name, copies[i]!]),
    metadata,
    ...(release ? { release } : {}),
  };
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
export async function snapshotOptimizerState(
  engine: StateHolder,
  options: SnapshotOptions = {},
): Promise<TensorSnapshot> {
  const named: Array<[string, tf.Tensor]> = [];
  for (const name of engine.stateNames()) {
    const state = engine.stateOf(name)!;
    for (const key of Object.keys(state).sort()) named.push([`${name}${KEY_SEP}${key}`, state[key]!]);
  }
  return snapshotTensors(named, { optimizer: engine.optimizer.name }, options);
}

/** `snapshotOptimizerState`, encoded (format 2). */
export async function encodeOptimizerState(engine: StateHolder): Promise<Uint8Array> {
  const { entries, metadata } = await snapshotOptimizerState(engine);
  return encodePayload(entries, metadata);
}

/** An optimizer file's tensors by parameter, then state key (`PARAM::KEY`), after checking the optimizer's name. */
export function optimizerTensors(
  bytes: Uint8Array,
  origin: string,
  optimizerName: string,
): Map<string, Map<string, SafeTensor>> {
  const file = decodePayload(bytes, origin);
  if (file.metadata.optimizer !== optimizerName) {
    throw new CheckpointError(
      `${origin} holds '${file.metadata.optimizer}' state, the run uses '${optimizerName}': pass --optimizer ${file.metadata.optimizer}`,
    );
  }
  const byParam = new Map<string, Map<string, SafeTensor>>();
  for (const [full, t] of file.tensors) {
    const at = full.lastIndexOf(KEY_SEP);
    const name = full.slice(0, at);
    if (!byParam.has(name)) byParam.set(name, new Map());
    byParam.get(name)!.set(full.slice(at + KEY_SEP.length), t);
  }
  return byParam;
}

/**
 * Replaces the holder's optimizer state of every parameter it keeps with `byParam`'s (parameter → state key → stored
 * tensor, as `optimizerTensors` reads them or a re-partition builds them); `origin` names the source in errors.
 */
export function setOptimizerState(
  byParam: ReadonlyMap<string, ReadonlyMap<string, SafeTensor>>,
  origin: string,
  engine: StateHolder,
): void {
  for (const name of engine.stateNames()) {
    const saved = byParam.get(name) ?? new Map<string, SafeTensor>();
    if (saved.size === 0 && Object.keys(engine.stateOf(name)!).length > 0) {
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

/** Replaces the holder's optimizer state with the saved one (checked against its parameters). */
export function restoreOptimizerState(bytes: Uint8Array, origin: string, engine: StateHolder): void {
  setOptimizerState(optimizerTensors(bytes, origin, engine.optimizer.name), origin, engine);
}
