/**
 * A bound on tfjs-backend-webgpu's buffer pool, and the GPU byte counters K* reports.
 *
 * Why: the pool (tfjs-backend-webgpu 4.22 `BufferManager`) keys free buffers by exact `size_usage` and never
 * destroys one, so a free buffer of one size cannot serve a request of another and the pool only grows: 47.3 GiB
 * allocated against a 31.96 GiB peak in use for gpt2-124m B=8 T=1024 (bench/results/2026-11-23-h100-gpu.json), and
 * 87 GiB with plain tfjs. Here, after every release the least recently freed buffers are destroyed until
 * `allocated ≤ highWaterInUse + maxFreeBytes`, where `highWaterInUse` is the largest number of bytes ever in use at
 * once: the pool never holds more than the largest working set seen plus a slack.
 *
 * Why not `allocated ≤ inUse + slack`: between steps almost nothing is in use (gpt2-124m: ~2 of 32 GiB), so that bound
 * destroys the step's buffers at its end and the next step creates them again; Dawn zero-fills every new buffer, and
 * that churn cost 3× the step time on the H100 (4,301 against 12,663 tokens/s, bench/results/2026-11-23-h100-gpu-pool-inuse-bound.json).
 *
 * Destroying a free buffer is safe: tfjs only frees a tensor's buffer once the command buffer that uses it is
 * submitted (`commandQueueOwnedIds` → `tensorDataPendingDisposal`), and WebGPU lets a buffer used by submitted work be
 * destroyed (the implementation keeps the memory until that work completes).
 */

/** The slice of tfjs-backend-webgpu's `BufferManager` we read and wrap. */
interface GPUBufferLike {
  readonly size: number;
  readonly usage: number;
  destroy(): void;
}
interface BufferManagerLike {
  numBytesUsed: number;
  numBytesAllocated: number;
  numFreeBuffers: number;
  freeBuffers: Map<string, GPUBufferLike[]>;
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): GPUBufferLike;
  releaseBuffer(buffer: GPUBufferLike, reuse?: boolean): void;
  dispose(): void;
}

export interface WebGPUPoolStats {
  /** Bytes of pooled buffers held by live tensors (and pending uniforms/staging buffers). */
  bytesInUse: number;
  /** Bytes of every buffer the pool holds: in use + free. */
  bytesAllocated: number;
  /** High-water marks since the bound was installed or `resetWebGPUPoolPeaks()`. */
  peakBytesInUse: number;
  peakBytesAllocated: number;
  /** The slack above the in-use high-water mark (Infinity: unbounded). */
  maxFreeBytes: number;
  /** The largest bytes in use ever seen (never reset): the bound is `allocated ≤ highWaterBytesInUse + maxFreeBytes`. */
  highWaterBytesInUse: number;
  /** Bytes of free buffers destroyed by the bound so far. */
  evictedBytes: number;
}

interface PoolState {
  manager: BufferManagerLike;
  maxFreeBytes: number;
  /** Free buffers in the order they were freed (oldest first); the value is the pool key. */
  lru: Map<GPUBufferLike, string>;
  peakInUse: number;
  peakAllocated: number;
  highWater: number;
  evictedBytes: number;
}

/** Default slack of the pool above the in-use high-water mark. */
export const DEFAULT_MAX_FREE_POOL_BYTES = 1024 ** 3;

const states = new WeakMap<object, PoolState>();

function managerOf(backend: object): BufferManagerLike {
  const m = (backend as { bufferManager?: BufferManagerLike }).bufferManager;
  if (m == null || typeof m.releaseBuffer !== 'function' || !(m.freeBuffers instanceof Map)) {
    throw new Error(
      'this WebGPU backend has no tfjs-backend-webgpu 4.22 BufferManager (bufferManager.freeBuffers): cannot bound its pool',
    );
  }
  return m;
}

/** Destroys least recently freed buffers until `allocated + incoming ≤ max(highWater, used + incoming) + maxFreeBytes`. */
function evict(s: PoolState, incoming = 0): void {
  const m = s.manager;
  for (const [buffer, key] of s.lru) {
    const limit = Math.max(s.highWater, m.numBytesUsed + incoming) + s.maxFreeBytes;
    if (m.numBytesAllocated + incoming <= limit) break;
    const list = m.freeBuffers.get(key);
    const i = list ? list.indexOf(buffer) : -1;
    s.lru.delete(buffer);
    if (i < 0) continue; // already reused
    list![i] = list![list!.length - 1]!;
    list!.pop();
    m.numFreeBuffers--;
    m.numBytesAllocated -= buffer.size;
    s.evictedBytes += buffer.size;
    buffer.destroy();
  }
}

/**
 * Installs (or updates) the bound on `backend`'s pool (a tfjs `WebGPUBackend`): allocated ≤ in-use high-water mark +
 * `maxFreeBytes` (`Infinity` keeps tfjs's unbounded pool but still tracks peaks). Idempotent.
 */
export function boundWebGPUPool(backend: object, maxFreeBytes = DEFAULT_MAX_FREE_POOL_BYTES): void {
  if (!(maxFreeBytes >= 0)) {
    throw new Error(`maxFreeBytes must be ≥ 0 (got ${maxFreeBytes})`);
  }
  const existing = states.get(backend);
  if (existing) {
    existing.maxFreeBytes = maxFreeBytes;
    evict(existing);
    return;
  }
  const m = managerOf(backend);
  const s: PoolState = {
    manager: m,
    maxFreeBytes,
    lru: new Map(),
    peakInUse: m.numBytesUsed,
    peakAllocated: m.numBytesAllocated,
    highWater: m.numBytesUsed,
    evictedBytes: 0,
  };
  states.set(backend, s);
  const acquire = m.acquireBuffer.bind(m);
  const release = m.releaseBuffer.bind(m);
  const dispose = m.dispose.bind(m);
  m.acquireBuffer = (size, usage, mappedAtCreation = false, reuse = true) => {
    const key = `${size}_${usage}`;
    const free = reuse ? m.freeBuffers.get(key) : undefined;
    // tfjs pops the last free buffer of this key: it leaves the LRU.
    if (free && free.length > 0) s.lru.delete(free[free.length - 1]!);
    // A miss creates a buffer: make room first, so the bound holds at every moment, not only after releases.
    else evict(s, size);
    const buffer = acquire(size, usage, mappedAtCreation, reuse);
    if (m.numBytesUsed > s.peakInUse) s.peakInUse = m.numBytesUsed;
    if (m.numBytesUsed > s.highWater) s.highWater = m.numBytesUsed;
    if (m.numBytesAllocated > s.peakAllocated) s.peakAllocated = m.numBytesAllocated;
    return buffer;
  };
  m.releaseBuffer = (buffer, reuse = true) => {
    const before = m.numFreeBuffers;
    release(buffer, reuse);
    if (m.numFreeBuffers > before) {
      s.lru.set(buffer, `${buffer.size}_${buffer.usage}`);
      evict(s);
    }
  };
  m.dispose = () => {
    s.lru.clear();
    dispose();
  };
}

/** The pool counters of `backend`, or null when it is not a WebGPU backend with a bound installed. */
export function webgpuPoolStats(backend: object | null): WebGPUPoolStats | null {
  const s = backend ? states.get(backend) : undefined;
  if (!s) return null;
  return {
    bytesInUse: s.manager.numBytesUsed,
    bytesAllocated: s.manager.numBytesAllocated,
    peakBytesInUse: s.peakInUse,
    peakBytesAllocated: s.peakAllocated,
    maxFreeBytes: s.maxFreeBytes,
    highWaterBytesInUse: s.highWater,
    evictedBytes: s.evictedBytes,
  };
}

/** Restarts the high-water marks at the current counters (e.g. before a measured step). */
export function resetWebGPUPoolPeaks(backend: object | null): void {
  const s = backend ? states.get(backend) : undefined;
  if (!s) return;
  s.peakInUse = s.manager.numBytesUsed;
  s.peakAllocated = s.manager.numBytesAllocated;
}
