import { expect, it } from 'vitest';
import {
  type PinnedAllocator,
  type PinnedBlock,
  PinnedStagingPool,
  readStaged,
  STAGING_ALIGN,
  type StagingDevice,
  stagingLayout,
} from '../src/staged-read.ts';

it('the staging layout puts each tensor at an aligned offset after the previous one, none overlapping', () => {
  const sizes = [4, 0, 1000, 256, 12, 7];
  const { offsets, bytes } = stagingLayout(sizes);
  for (const [i, at] of offsets.entries()) {
    expect(at % STAGING_ALIGN).toBe(0);
    if (i > 0) expect(at).toBeGreaterThanOrEqual(offsets[i - 1]! + sizes[i - 1]!);
  }
  expect(bytes).toBe(offsets.at(-1)! + sizes.at(-1)!);
  expect(stagingLayout([]).bytes).toBe(0);
  expect(() => stagingLayout([8, -1])).toThrow('invalid size -1');
});

/** Pinned blocks faked by ArrayBuffers at made-up addresses; device memory by byte arrays at made-up pointers. */
function fakes() {
  const blocks = new Map<bigint, PinnedBlock>();
  let nextAddress = 1n << 32n;
  const freed: PinnedBlock[] = [];
  const allocator: PinnedAllocator = {
    alloc(bytes) {
      const block = { address: nextAddress, bytes, memory: new ArrayBuffer(bytes) };
      blocks.set(block.address, block);
      nextAddress += BigInt(bytes) + (1n << 20n);
      return block;
    },
    free(block) {
      freed.push(block);
      blocks.delete(block.address);
    },
  };
  const deviceMemory = new Map<number, Uint8Array>();
  let queued: Array<() => void> = [];
  const device: StagingDevice & { syncs: number } = {
    syncs: 0,
    copyToHost(address, src, bytes) {
      // Resolve the address to its block, as the DMA engine would; an address outside every block is a bug.
      const block = [...blocks.values()].find(
        (b) => address >= b.address && address + BigInt(bytes) <= b.address + BigInt(b.bytes),
      );
      if (!block) throw new Error(`copy to ${address} (${bytes} bytes) is outside every pinned block`);
      const at = Number(address - block.address);
      const from = deviceMemory.get(src)!;
      // Stream-ordered: nothing lands before the sync.
      queued.push(() => new Uint8Array(block.memory, at, bytes).set(from.subarray(0, bytes)));
    },
    sync() {
      device.syncs++;
      for (const copy of queued) copy();
      queued = [];
    },
  };
  let nextPtr = 0x1000;
  const tensor = (bytes: number) => {
    const data = Uint8Array.from({ length: bytes }, () => Math.floor(Math.random() * 256));
    const ptr = nextPtr;
    nextPtr += bytes + 512;
    deviceMemory.set(ptr, data);
    return { ptr, bytes, data };
  };
  return { allocator, device, freed, tensor };
}

it('a staged read copies every tensor into one pinned block with one sync, and the next read reuses the block', () => {
  const { allocator, device, freed, tensor } = fakes();
  const pool = new PinnedStagingPool(allocator);
  const state = [tensor(4 * 1000), tensor(4), tensor(0), tensor(4 * 33)];
  const first = readStaged(device, pool, state);
  expect(device.syncs).toBe(1);
  for (const [i, t] of state.entries()) expect(first.views[i]).toEqual(t.data);
  first.release();
  first.release(); // idempotent
  const second = readStaged(device, pool, state);
  expect(pool.allocations).toBe(1);
  for (const [i, t] of state.entries()) expect(second.views[i]).toEqual(t.data);
  // Held copies are never overwritten: a read while `second` is held takes another block.
  const other = [tensor(64)];
  const third = readStaged(device, pool, other);
  expect(pool.allocations).toBe(2);
  for (const [i, t] of state.entries()) expect(second.views[i]).toEqual(t.data);
  expect(third.views[0]).toEqual(other[0]!.data);
  second.release();
  third.release();
  // A larger state than any idle block: the idle blocks are freed and a larger one allocated.
  const larger = [tensor(8192)];
  readStaged(device, pool, larger).release();
  expect(pool.allocations).toBe(3);
  expect(freed).toHaveLength(2);
  pool.dispose();
  expect(freed).toHaveLength(3);
});

it('a failed copy returns the block to the pool', () => {
  const { allocator, device, tensor } = fakes();
  const pool = new PinnedStagingPool(allocator);
  const failing = {
    ...device,
    sync: () => {
      throw new Error('CUDA error 700');
    },
  };
  expect(() => readStaged(failing, pool, [tensor(16)])).toThrow('CUDA error 700');
  readStaged(device, pool, [tensor(16)]).release();
  expect(pool.allocations).toBe(1);
});
