import type { CudaDevice } from './device.ts';

/**
 * The fast device-to-host read of many tensors (a checkpoint's state): every tensor copied into one page-locked
 * (pinned) host buffer by stream-ordered cuMemcpyDtoHAsync calls, one stream synchronisation at the end. Pinned
 * memory is copied by DMA at the link's speed, with no staging through a driver bounce buffer as pageable memory is,
 * and the copies queue behind the step's kernels (they see its results) without a wait per tensor. The pinned
 * buffers come from a pool and are reused: a checkpoint of the same state every N steps allocates once.
 */

/** Each tensor's offset in a staging buffer is a multiple of this (bytes): DMA-friendly, and ≥ any element size. */
export const STAGING_ALIGN = 256;

/** Where each of `sizes` (bytes) lies in one staging buffer, in order, aligned; `bytes` is the buffer's size. */
export function stagingLayout(
  sizes: readonly number[],
  align = STAGING_ALIGN,
): { offsets: number[]; bytes: number } {
  const offsets: number[] = [];
  let end = 0;
  for (const size of sizes) {
    if (!Number.isInteger(size) || size < 0) throw new Error(`staging layout: invalid size ${size}`);
    const at = Math.ceil(end / align) * align;
    offsets.push(at);
    end = at + size;
  }
  return { offsets, bytes: end };
}

/** A block of pinned host memory: its address (for the copies) and a view of its bytes. */
export interface PinnedBlock {
  readonly address: bigint;
  readonly bytes: number;
  readonly memory: ArrayBuffer;
}

/** Allocates and frees pinned blocks (the CUDA driver; a fake in tests). */
export interface PinnedAllocator {
  alloc(bytes: number): PinnedBlock;
  free(block: PinnedBlock): void;
}

/**
 * Pinned blocks reused across reads: `acquire` hands out the smallest free block that is large enough, or allocates
 * one (first freeing the free blocks too small to serve: the state only grows when the run changes); `release`
 * returns it. A block is never handed out twice at once.
 */
export class PinnedStagingPool {
  private readonly idle: PinnedBlock[] = [];
  /** Blocks allocated so far (tests and reports: a save after the first allocates none). */
  allocations = 0;

  constructor(private readonly allocator: PinnedAllocator) {}

  acquire(bytes: number): PinnedBlock {
    let best = -1;
    for (const [i, b] of this.idle.entries()) {
      if (b.bytes >= bytes && (best < 0 || b.bytes < this.idle[best]!.bytes)) best = i;
    }
    if (best >= 0) return this.idle.splice(best, 1)[0]!;
    for (const b of this.idle.splice(0)) this.allocator.free(b);
    this.allocations++;
    return this.allocator.alloc(Math.max(bytes, STAGING_ALIGN));
  }

  release(block: PinnedBlock): void {
    if (this.idle.includes(block)) throw new Error('pinned staging: a block was released twice');
    this.idle.push(block);
  }

  /** Frees the idle blocks (blocks still held are freed by their release after this: call at the end only). */
  dispose(): void {
    for (const b of this.idle.splice(0)) this.allocator.free(b);
  }
}

/** Host copies of many tensors, views into a pinned block: valid until `release` (then the block is reused). */
export interface StagedRead {
  /** Each tensor's bytes, in the order asked. */
  readonly views: Uint8Array[];
  /** Returns the block to the pool; the views must not be read after it. Idempotent. */
  release(): void;
}

/** What a staged read needs of the device: queue a copy into host memory at an address, and wait for the stream. */
export interface StagingDevice {
  copyToHost(address: bigint, src: number, bytes: number): void;
  sync(): void;
}

/** Copies every `(ptr, bytes)` into one block of `pool`, in order, with one synchronisation at the end. */
export function readStaged(
  device: StagingDevice,
  pool: PinnedStagingPool,
  sources: ReadonlyArray<{ ptr: number; bytes: number }>,
): StagedRead {
  const layout = stagingLayout(sources.map((s) => s.bytes));
  const block = pool.acquire(layout.bytes);
  try {
    for (const [i, s] of sources.entries()) {
      if (s.bytes > 0) device.copyToHost(block.address + BigInt(layout.offsets[i]!), s.ptr, s.bytes);
    }
    device.sync();
  } catch (e) {
    pool.release(block);
    throw e;
  }
  let released = false;
  return {
    views: sources.map((s, i) => new Uint8Array(block.memory, layout.offsets[i]!, s.bytes)),
    release() {
      if (released) return;
      released = true;
      pool.release(block);
    },
  };
}

/** The CUDA driver's pinned allocations (cuMemAllocHost / cuMemFreeHost) and queued copies for `readStaged`. */
export function cudaStaging(device: CudaDevice): { allocator: PinnedAllocator; device: StagingDevice } {
  const { driver, koffi } = device.libs;
  const pointers = new Map<PinnedBlock, unknown>();
  return {
    allocator: {
      alloc(bytes) {
        const out: unknown[] = [null];
        device.check(driver.cuMemAllocHost(out, bytes), `cuMemAllocHost(${bytes} bytes)`);
        const block = { address: koffi.address(out[0]), bytes, memory: koffi.view(out[0], bytes) };
        pointers.set(block, out[0]);
        return block;
      },
      free(block) {
        device.check(driver.cuMemFreeHost(pointers.get(block)), 'cuMemFreeHost');
        pointers.delete(block);
      },
    },
    device: {
      copyToHost(address, src, bytes) {
        device.check(
          driver.cuMemcpyDtoHAsyncToAddress(address, src, bytes, device.stream),
          'cuMemcpyDtoHAsync (staged)',
        );
      },
      sync: () => device.sync(),
    },
  };
}
