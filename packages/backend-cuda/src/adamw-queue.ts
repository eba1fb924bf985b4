import type { CudaBackend } from './backend.ts';
import { BLOCK } from './device.ts';
import { ADAMW_CONSTS, ADAMW_GROUP, adamwMultiSource } from './kstar-sources.ts';
import { StructBuilder } from './params.ts';
import { profileFile, timed } from './profile.ts';

/** One queued AdamW update: its four buffers, its length (float4s where `vec4`, else floats), its constants. */
export interface AdamwUpdate {
  p: number;
  g: number;
  m: number;
  v: number;
  n: number;
  vec4: boolean;
  /** ADAMW_CONSTS' values, in that order. */
  k: number[];
}

/** Blocks a tensor at most (grid x, BLOCK threads each); longer tensors are covered by grid stride. */
const MAX_BLOCKS_X = 1024;

/**
 * A step's AdamW updates, queued instead of launched one by one: a GPT has 148 parameter tensors, most of them biases
 * and LayerNorm weights of 768 floats, each a launch that keeps the GPU idle more than busy. The queue goes out as
 * launches of up to ADAMW_GROUP tensors (`flush`) before anything else can see the buffers: every other kernel, a
 * read, the disposal of a queued buffer, `memory()` (the trainer's step boundary). An update of a tensor already
 * queued flushes first (two updates of one buffer in one launch would race). KSTAR_CUDA_ADAMW_BATCH=0 turns the
 * queue off (kstar-kernels.ts then launches each update as before).
 */
export class AdamwQueue {
  private updates: AdamwUpdate[] = [];
  private readonly buffers = new Set<number>();
  private readonly timedFlush: (ctx: { backend: CudaBackend }) => void;

  constructor() {
    const flush = ({ backend }: { backend: CudaBackend }) => this.launchAll(backend);
    const file = profileFile();
    this.timedFlush = file ? timed('KstarAdamW (batched)', flush, file) : flush;
  }

  static enabled(): boolean {
    return process.env.KSTAR_CUDA_ADAMW_BATCH !== '0';
  }

  /** Queues `u`. */
  push(b: CudaBackend, u: AdamwUpdate): void {
    if ([u.p, u.m, u.v].some((x) => this.buffers.has(x))) this.flush(b);
    this.updates.push(u);
    for (const x of [u.p, u.g, u.m, u.v]) this.buffers.add(x);
    if (this.updates.length === ADAMW_GROUP) this.flush(b);
  }

  /** Whether a queued update reads or writes the buffer at `ptr`. */
  holds(ptr: number): boolean {
    return this.buffers.has(ptr);
  }

  /** Launches every queued update (nothing when the queue is empty). */
  flush(b: CudaBackend): void {
    if (this.updates.length > 0) this.timedFlush({ backend: b });
  }

  private launchAll(b: CudaBackend): void {
    const all = this.updates;
    this.updates = [];
    this.buffers.clear();
    for (let i = 0; i < all.length; i += ADAMW_GROUP) launchGroup(b, all.slice(i, i + ADAMW_GROUP));
  }
}

/** One launch over `group` (at most ADAMW_GROUP updates): the `AdamwGroup` struct of adamwMultiSource by value. */
function launchGroup(b: CudaBackend, group: readonly AdamwUpdate[]): void {
  const d = b.device;
  const col = (f: (u: AdamwUpdate) => number) => group.map(f);
  const s = new StructBuilder();
  for (const key of ['p', 'g', 'm', 'v', 'n'] as const)
    s.longLong(
      col((u) => u[key]),
      ADAMW_GROUP,
    );
  s.float(
    group.flatMap((u) => u.k),
    ADAMW_GROUP * ADAMW_CONSTS.length,
  ).int(
    col((u) => (u.vec4 ? 1 : 0)),
    ADAMW_GROUP,
  );
  const most = Math.max(...col((u) => u.n));
  const name = 'kstar_adamw_multi';
  d.current = `KstarAdamW ×${group.length}`;
  d.launch(
    d.kernel(name, adamwMultiSource(name)),
    Math.max(1, Math.min(MAX_BLOCKS_X, Math.ceil(most / BLOCK))),
    BLOCK,
    [s.build()],
    name,
    group.length,
  );
}
