import type * as tf from '@tensorflow/tfjs-core';
import { type EngineInternals, engineInternals } from './engine-internals.ts';

/**
 * The memory ledger: bytes of unique data buffers alive, per term, and the step's peak.
 *
 * Why not `tf.memory().numBytes` or `tf.profile().peakBytes`: they add `size × bytesPerElement` for every Tensor
 * object, so a reshape or a clone that shares its buffer counts again (five reshapes of a 4,000-byte tensor plus one
 * add read 28,000 bytes where 8,000 bytes of buffers exist). The ledger instead hooks the two places where the tfjs
 * engine starts and stops tracking a data buffer (`trackTensor` registers a new dataId, `removeDataId` forgets it)
 * and counts each dataId once. This works on every backend because it sits in the engine, not the backend. On wasm,
 * clones really are copies (its Identity kernel copies) and the ledger counts them as the separate buffers they are.
 *
 * Buffers created before the ledger was attached are unknown to it; `adopt()` registers existing tensors (e.g. the
 * model's variables) so they are counted and later released correctly.
 */

type DataId = object;
type Hook = { onTrack(bytes: number, dataId: DataId): void; onRemove(bytes: number, dataId: DataId): void };

const live = new Map<DataId, number>();
const hooks = new Set<Hook>();
let installed: {
  engine: EngineInternals;
  track: EngineInternals['trackTensor'];
  remove: EngineInternals['removeDataId'];
} | null = null;

function bytesOfTensor(t: { size: number; dtype: string }): number {
  if (t.dtype === 'string' || t.dtype === 'complex64') return 0;
  return t.size * (t.dtype === 'bool' ? 1 : 4);
}

function install(): void {
  const engine = engineInternals();
  if (installed && installed.engine === engine) return;
  const track = engine.trackTensor;
  const remove = engine.removeDataId;
  engine.trackTensor = function (this: EngineInternals, a: tf.Tensor, backend: unknown) {
    const isNew = !this.state.tensorInfo.has(a.dataId);
    track.call(this, a, backend);
    if (isNew && !live.has(a.dataId)) {
      const bytes = bytesOfTensor(a);
      live.set(a.dataId, bytes);
      for (const h of hooks) h.onTrack(bytes, a.dataId);
    }
  };
  engine.removeDataId = function (this: EngineInternals, dataId: DataId, backend: unknown) {
    const had = this.state.tensorInfo.has(dataId);
    remove.call(this, dataId, backend);
    if (had && !this.state.tensorInfo.has(dataId)) {
      const bytes = live.get(dataId);
      if (bytes !== undefined) {
        live.delete(dataId);
        for (const h of hooks) h.onRemove(bytes, dataId);
      }
    }
  };
  installed = { engine, track, remove };
}

/** Bytes of the unique data buffers behind `tensors` (a buffer shared by several tensors counts once). */
export function uniqueBufferBytes(tensors: Iterable<tf.Tensor>): number {
  const seen = new Set<DataId>();
  let total = 0;
  for (const t of tensors) {
    if (t.isDisposed || seen.has(t.dataId)) continue;
    seen.add(t.dataId);
    total += bytesOfTensor(t);
  }
  return total;
}

/** What the ledger measured over one window (a step, or a `measure` call). */
export interface WindowStats {
  /** Peak of unique buffer bytes alive (everything the ledger knows of). */
  peakBytes: number;
  /** Peak of gradient bytes alive (buffers tagged `grad`). */
  gradPeakBytes: number;
  /** Peak of bytes alive beyond the resident bytes declared at the window's start and the live gradients: activations and temporaries. */
  activationPeakBytes: number;
  /** Peak of host-memory bytes declared through `trackHostBytes` (offloaded data; not in `peakBytes`). */
  hostPeakBytes: number;
  /** Unique bytes alive at the start of the window. */
  startBytes: number;
  /** Unique bytes alive at the end of the window. */
  endBytes: number;
}

export type MemoryTerm = 'params' | 'grads' | 'optimizerState' | 'activations' | 'other';

/** The `memory` object of a `--report`. Every field is measured except `predictedPeakBytes`. */
export interface MemoryReport {
  paramBytes: number;
  gradBytes: number;
  optimizerStateBytes: number;
  activationPeakBytes: number;
  peakBytes: number;
  predictedPeakBytes: number;
  predicted: Record<string, number>;
  gpuBytesInUse?: number;
  gpuBytesAllocated?: number;
  rssBytes?: number;
}

/** Host-memory bytes that plugins hold outside tensors (offloaded activations or state), shared by every ledger. */
let hostLive = 0;
const hostListeners = new Set<() => void>();

/**
 * Declare `delta` bytes of host memory taken (> 0) or given back (< 0) outside any tensor, e.g. a segment input
 * offloaded to a Float32Array. Ledgers count them apart from the device's buffers.
 */
export function trackHostBytes(delta: number): void {
  hostLive += delta;
  for (const l of hostListeners) l();
}

export class MemoryLedger {
  private liveBytes = 0;
  private gradLive = 0;
  private readonly gradIds = new Set<DataId>();
  private window: {
    resident: number;
    peak: number;
    gradPeak: number;
    actPeak: number;
    hostPeak: number;
    start: number;
  } | null = null;
  private readonly hook: Hook;
  private readonly hostListener = () => {
    if (this.window && hostLive > this.window.hostPeak) this.window.hostPeak = hostLive;
  };
  /** Each plugin's predicted bytes, by name (e.g. `optimizer:adamw`, `activations:model`). */
  readonly predictions = new Map<string, number>();

  constructor() {
    install();
    // Start from what the engine tracks now that the ledger knows of (buffers made after any earlier attach).
    for (const b of live.values()) this.liveBytes += b;
    this.hook = {
      onTrack: (bytes) => {
        this.liveBytes += bytes;
        this.sample();
      },
      onRemove: (bytes, id) => {
        this.liveBytes -= bytes;
        if (this.gradIds.delete(id)) this.gradLive -= bytes;
      },
    };
    hooks.add(this.hook);
    hostListeners.add(this.hostListener);
  }

  /** Host-memory bytes declared through `trackHostBytes` alive now (not part of `bytesAlive`). */
  get hostBytesAlive(): number {
    return hostLive;
  }

  /** Count existing tensors (created before any ledger was attached) as live buffers. */
  adopt(tensors: Iterable<tf.Tensor>): void {
    for (const t of tensors) {
      if (t.isDisposed || live.has(t.dataId)) continue;
      const bytes = bytesOfTensor(t);
      live.set(t.dataId, bytes);
      for (const h of hooks) h.onTrack(bytes, t.dataId);
    }
  }

  /** Unique buffer bytes alive now. */
  get bytesAlive(): number {
    return this.liveBytes;
  }

  /** Gradient bytes alive now. */
  get gradBytesAlive(): number {
    return this.gradLive;
  }

  /** Tag a gradient tensor's buffer so the ledger tracks gradient bytes separately until it is freed. */
  tagGrad(t: tf.Tensor): void {
    const bytes = live.get(t.dataId);
    if (bytes === undefined || this.gradIds.has(t.dataId)) return;
    this.gradIds.add(t.dataId);
    this.gradLive += bytes;
    this.sample();
  }

  /** Open a measurement window. `residentBytes`: bytes that are not activations (params + optimizer state). */
  begin(residentBytes: number): void {
    this.window = {
      resident: residentBytes,
      peak: this.liveBytes,
      gradPeak: this.gradLive,
      actPeak: Math.max(0, this.liveBytes - residentBytes - this.gradLive),
      hostPeak: hostLive,
      start: this.liveBytes,
    };
  }

  /** Close the window and return its peaks. */
  end(): WindowStats {
    const w = this.window;
    if (!w)
      throw new Error(
        'MemoryLedger.end() called without begin(): open a window with begin(residentBytes) first',
      );
    this.window = null;
    return {
      peakBytes: w.peak,
      gradPeakBytes: w.gradPeak,
      activationPeakBytes: w.actPeak,
      hostPeakBytes: w.hostPeak,
      startBytes: w.start,
      endBytes: this.liveBytes,
    };
  }

  /** Run `fn` in a window and return its result with the peak of NEW unique bytes it held (peak minus bytes at start). */
  measure<T>(fn: () => T): { result: T; peakNewBytes: number; stats: WindowStats } {
    this.begin(this.liveBytes);
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.window = null;
      throw e;
    }
    const stats = this.end();
    return { result, peakNewBytes: stats.peakBytes - stats.startBytes, stats };
  }

  /** Stop listening to the engine. */
  detach(): void {
    hooks.delete(this.hook);
    hostListeners.delete(this.hostListener);
  }

  private sample(): void {
    const w = this.window;
    if (!w) return;
    if (this.liveBytes > w.peak) w.peak = this.liveBytes;
    if (this.gradLive > w.gradPeak) w.gradPeak = this.gradLive;
    const act = this.liveBytes - w.resident - this.gradLive;
    if (act > w.actPeak) w.actPeak = act;
  }
}
