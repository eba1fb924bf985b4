import * as tf from '@tensorflow/tfjs-core';
import { AdamwQueue } from './adamw-queue.ts';
import type { CudaDevice } from './device.ts';
import { markProfileStep } from './profile.ts';
import { sizeOf } from './shape.ts';
import {
  cudaStaging,
  PinnedStagingPool,
  readStaged,
  type StagedRead,
  type StagingDevice,
} from './staged-read.ts';

/** One tensor's device storage. bool is stored as int32 (0/1), so every element is 4 bytes. */
export interface CudaData {
  ptr: number;
  bytes: number;
  dtype: tf.DataType;
  refCount: number;
}

const ELEMENT_BYTES = 4;

function checkDtype(dtype: tf.DataType): void {
  if (dtype === 'string' || dtype === 'complex64')
    throw new Error(`backend 'cuda' stores float32, int32 and bool tensors only (got ${dtype})`);
}

/**
 * The tfjs backend `cuda`: every tensor's data lives in device memory from the stream-ordered pool; kernels are
 * queued on one stream, so JavaScript runs ahead until it reads a value back (`readSync`/`read`).
 */
export class CudaBackend extends tf.KernelBackend {
  private readonly data = new Map<tf.DataId, CudaData>();
  private bytesInUse = 0;
  private peakBytesInUse = 0;
  /** High-water mark since the last `resetStepPeak` (the trainer resets it at each step's start). */
  private stepPeakBytesInUse = 0;
  private staging: { pool: PinnedStagingPool; device: StagingDevice } | undefined;
  /** AdamW updates waiting for one batched launch (adamw-queue.ts): flushed before anything can see their buffers. */
  readonly adamw = new AdamwQueue();

  constructor(readonly device: CudaDevice) {
    super();
  }

  /** Device pointer of a tensor's data. */
  pointer(dataId: tf.DataId): number {
    const d = this.data.get(dataId);
    if (!d)
      throw new Error("backend 'cuda': a tensor's data is not on this backend (disposed, or made elsewhere)");
    return d.ptr;
  }

  /** Allocates an output tensor of `shape` (uninitialised). */
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo {
    checkDtype(dtype);
    const bytes = sizeOf(shape) * ELEMENT_BYTES;
    const dataId = {};
    this.data.set(dataId, { ptr: this.device.alloc(bytes), bytes, dtype, refCount: 1 });
    this.track(bytes);
    return { dataId, shape, dtype };
  }

  private track(bytes: number): void {
    this.bytesInUse += bytes;
    if (this.bytesInUse > this.peakBytesInUse) this.peakBytesInUse = this.bytesInUse;
    if (this.bytesInUse > this.stepPeakBytesInUse) this.stepPeakBytesInUse = this.bytesInUse;
  }

  override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId {
    const dataId = {};
    this.move(dataId, values, shape, dtype, 1);
    return dataId;
  }

  override move(
    dataId: tf.DataId,
    values: tf.backend_util.BackendValues,
    shape: number[],
    dtype: tf.DataType,
    refCount: number,
  ): void {
    checkDtype(dtype);
    const n = sizeOf(shape);
    const bytes = n * ELEMENT_BYTES;
    const ptr = this.device.alloc(bytes);
    this.data.set(dataId, { ptr, bytes, dtype, refCount });
    this.track(bytes);
    if (values != null) this.device.upload(ptr, toDeviceArray(values as ArrayLike<number>, dtype, n));
  }

  override readSync(dataId: tf.DataId): tf.backend_util.BackendValues {
    this.adamw.flush(this);
    const d = this.data.get(dataId);
    if (!d) throw new Error("backend 'cuda': readSync of a disposed tensor");
    const n = d.bytes / ELEMENT_BYTES;
    if (d.dtype === 'float32') {
      const out = new Float32Array(n);
      this.device.download(out, d.ptr);
      return out;
    }
    const raw = new Int32Array(n);
    this.device.download(raw, d.ptr);
    return d.dtype === 'bool' ? Uint8Array.from(raw) : raw;
  }

  override async read(dataId: tf.DataId): Promise<tf.backend_util.BackendValues> {
    return this.readSync(dataId);
  }

  /**
   * Host copies of many tensors at once (a checkpoint's state): one batch of copies into pinned staging memory and
   * one synchronisation (see staged-read.ts), instead of `read`'s pageable copy and wait per tensor. The views are
   * the raw stored bytes (bool as int32) and stay valid until `release()`.
   */
  readToPinnedHost(dataIds: readonly tf.DataId[]): StagedRead {
    this.adamw.flush(this);
    if (!this.staging) {
      const { allocator, device } = cudaStaging(this.device);
      this.staging = { pool: new PinnedStagingPool(allocator), device };
    }
    const sources = dataIds.map((id) => {
      const d = this.data.get(id);
      if (!d) throw new Error("backend 'cuda': readToPinnedHost of a disposed tensor");
      return d;
    });
    return readStaged(this.staging.device, this.staging.pool, sources);
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const d = this.data.get(dataId);
    if (!d) return true;
    d.refCount--;
    if (!force && d.refCount > 0) return false;
    if (this.adamw.holds(d.ptr)) this.adamw.flush(this); // a queued update still reads or writes it
    this.device.free(d.ptr);
    this.bytesInUse -= d.bytes;
    this.data.delete(dataId);
    return true;
  }

  override refCount(dataId: tf.DataId): number {
    return this.data.get(dataId)?.refCount ?? 0;
  }

  override incRef(dataId: tf.DataId): void {
    const d = this.data.get(dataId);
    if (d) d.refCount++;
  }

  override numDataIds(): number {
    return this.data.size;
  }

  override memory(): {
    unreliable: boolean;
    numBytesInGPU: number;
    numBytesInGPUAllocated: number;
    peakBytesInGPU: number;
    stepPeakBytesInGPU: number;
  } {
    // The trainer reads memory once a step, after the optimizer: its queued updates go out with the step, and this is
    // the profile's step boundary (a no-op when not profiling).
    this.adamw.flush(this);
    markProfileStep();
    const pool = this.device.poolBytes();
    return {
      unreliable: false,
      numBytesInGPU: this.bytesInUse,
      numBytesInGPUAllocated: pool.reserved,
      peakBytesInGPU: this.peakBytesInUse,
      stepPeakBytesInGPU: this.stepPeakBytesInUse,
    };
  }

  /**
   * Starts a new step-peak window at the current level: `memory().stepPeakBytesInGPU` is then the step's own
   * high-water mark, while `peakBytesInGPU` stays the mark since start (model build included).
   */
  resetStepPeak(): void {
    this.stepPeakBytesInUse = this.bytesInUse;
  }

  override timerAvailable(): boolean {
    return true;
  }

  override async time(f: () => void): Promise<tf.BackendTimingInfo> {
    this.adamw.flush(this);
    this.device.sync();
    const start = performance.now();
    f();
    this.adamw.flush(this);
    this.device.sync();
    return { kernelMs: performance.now() - start };
  }

  override floatPrecision(): 16 | 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override dispose(): void {
    this.adamw.flush(this);
    for (const id of [...this.data.keys()]) this.disposeData(id, true);
    this.device.sync();
    this.staging?.pool.dispose();
  }
}

/** Host values as the device stores them: float32 as is, int32 and bool as Int32Array. */
export function toDeviceArray(
  values: ArrayLike<number>,
  dtype: tf.DataType,
  n: number,
): Float32Array | Int32Array {
  if (values.length !== n) throw new Error(`backend 'cuda': ${values.length} values for ${n} elements`);
  if (dtype === 'float32') return values instanceof Float32Array ? values : Float32Array.from(values);
  return values instanceof Int32Array ? values : Int32Array.from(values);
}
