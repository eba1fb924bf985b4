import type { KoffiApi } from './libmpi.ts';

/**
 * Native host memory for MPI messages, reused across steps: one buffer per role, grown (never shrunk) to the
 * largest message seen. Native memory (not a JS typed array) because MPI runs on a koffi worker thread while the
 * event loop goes on, and a typed array's memory is only pinned for the duration of a synchronous call.
 */
export class HostBuffers {
  private readonly buffers = new Map<string, { ptr: bigint; bytes: number; view: ArrayBuffer }>();
  constructor(private readonly koffi: KoffiApi) {}

  /** A buffer of at least `bytes` for `role` (its contents are whatever the last user left). */
  get(role: string, bytes: number): { ptr: bigint; view: ArrayBuffer } {
    const have = this.buffers.get(role);
    if (have && have.bytes >= bytes) return have;
    if (have) this.koffi.free(have.ptr);
    const size = Math.max(bytes, 64, have ? Math.ceil(have.bytes * 1.5) : 0);
    const ptr = this.koffi.alloc('uint8', size);
    const entry = { ptr, bytes: size, view: this.koffi.view(ptr, size) };
    this.buffers.set(role, entry);
    return entry;
  }

  /** Bytes held by all buffers. */
  bytes(): number {
    let total = 0;
    for (const b of this.buffers.values()) total += b.bytes;
    return total;
  }

  dispose(): void {
    for (const b of this.buffers.values()) this.koffi.free(b.ptr);
    this.buffers.clear();
  }
}
