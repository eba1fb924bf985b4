import { type EngineInternals, engineInternals } from '@kstar/core';
import type * as tf from '@tensorflow/tfjs';

/**
 * Peak of unique data buffers created while `fn` runs. Hooks the two engine methods where a data buffer starts
 * (`trackTensor` with a dataId the engine has not seen) and stops (`removeDataId`) being tracked, so reshapes and
 * clones that share a buffer count once (`tf.memory().numBytes` / `tf.profile().peakBytes` count tensor objects).
 */
export interface PeakResult<T> {
  result: T;
  /** Peak bytes of buffers created inside `fn` and alive at the same time. */
  peakBytes: number;
  /** Bytes still alive (created in `fn`) when it returned. */
  endBytes: number;
  /** Peak when the buffers in `exclude(result)` are left out of every instant (e.g. returned parameter gradients). */
  peakExcluding: number;
  /** Buffers alive at the (excluding) peak: shape → count. */
  atPeak: Map<string, { count: number; bytes: number }>;
}

type DataId = object;

export function measurePeak<T>(fn: () => T, exclude: (r: T) => tf.Tensor[] = () => []): PeakResult<T> {
  const engine = engineInternals();
  const track = engine.trackTensor;
  const remove = engine.removeDataId;
  const events: { id: DataId; bytes: number; shape: string; add: boolean }[] = [];
  const live = new Map<DataId, number>();
  engine.trackTensor = function (this: EngineInternals, a: tf.Tensor, backend: unknown) {
    const isNew = !this.state.tensorInfo.has(a.dataId);
    track.call(this, a, backend);
    if (isNew) {
      const bytes = a.dtype === 'bool' ? a.size : a.size * 4;
      live.set(a.dataId, bytes);
      events.push({ id: a.dataId, bytes, shape: `${a.dtype}[${a.shape.join(',')}]`, add: true });
    }
  };
  engine.removeDataId = function (this: EngineInternals, dataId: DataId, backend: unknown) {
    const had = this.state.tensorInfo.has(dataId);
    remove.call(this, dataId, backend);
    if (had && !this.state.tensorInfo.has(dataId) && live.has(dataId)) {
      events.push({ id: dataId, bytes: live.get(dataId)!, shape: '', add: false });
      live.delete(dataId);
    }
  };
  let result: T;
  try {
    result = fn();
  } finally {
    engine.trackTensor = track;
    engine.removeDataId = remove;
  }
  const skip = new Set<DataId>(exclude(result).map((t) => t.dataId));
  let cur = 0;
  let curEx = 0;
  let peak = 0;
  let peakEx = 0;
  let peakIndex = -1;
  events.forEach((e, i) => {
    const d = e.add ? e.bytes : -e.bytes;
    cur += d;
    if (!skip.has(e.id)) curEx += d;
    if (cur > peak) peak = cur;
    if (curEx > peakEx) {
      peakEx = curEx;
      peakIndex = i;
    }
  });
  // Replay to the excluding peak for a breakdown by shape.
  const alive = new Map<DataId, { bytes: number; shape: string }>();
  for (let i = 0; i <= peakIndex; i++) {
    const e = events[i]!;
    if (e.add) alive.set(e.id, { bytes: e.bytes, shape: e.shape });
    else alive.delete(e.id);
  }
  const atPeak = new Map<string, { count: number; bytes: number }>();
  for (const [id, { bytes, shape }] of alive) {
    if (skip.has(id)) continue;
    const s = atPeak.get(shape) ?? { count: 0, bytes: 0 };
    s.count++;
    s.bytes += bytes;
    atPeak.set(shape, s);
  }
  return { result: result!, peakBytes: peak, endBytes: cur, peakExcluding: peakEx, atPeak };
}
