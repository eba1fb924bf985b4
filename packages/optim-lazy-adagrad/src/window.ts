import type { LazyAdagradState, StateMeta } from './state.ts';
import { compress, type WindowEncoding } from './state.ts';

/**
 * The window of the windowed mode: the `size` parameter groups most recently updated keep float32 accumulators;
 * when a group enters and the window is full, the least recently updated group leaves and every state of it is
 * stored 8-bit. In segmented mode the engine updates parameters segment by segment, so with a group per segment the
 * window holds the K segments just updated (the backward walk visits them last to first; the next step starts again
 * at the last one, so with K < groups every group is quantized and expanded once per step).
 */
export class GroupWindow {
  /** Groups in the window, least recent first. */
  private readonly order: string[] = [];
  private readonly members = new Map<string, Map<LazyAdagradState, StateMeta>>();
  /** Evictions so far (each quantizes the group's float32 states). */
  evictions = 0;

  constructor(
    readonly size: number,
    readonly encoding: WindowEncoding = 'sqrt',
  ) {}

  register(state: LazyAdagradState, meta: StateMeta): void {
    let m = this.members.get(meta.group);
    if (m == null) {
      m = new Map();
      this.members.set(meta.group, m);
    }
    m.set(state, meta);
  }

  /** Forgets a state (its tensors were disposed). */
  unregister(state: LazyAdagradState, meta: StateMeta): void {
    this.members.get(meta.group)?.delete(state);
  }

  /** Marks `group` as the most recently updated, evicting (quantizing) the least recent beyond `size`. */
  touch(group: string): void {
    const at = this.order.indexOf(group);
    if (at >= 0) this.order.splice(at, 1);
    this.order.push(group);
    while (this.order.length > this.size) {
      const out = this.order.shift()!;
      this.evictions++;
      for (const [state, meta] of this.members.get(out) ?? []) {
        const alive = Object.values(state).every((t) => t == null || !t.isDisposed);
        if (alive) compress(state, meta, this.encoding);
        else this.members.get(out)!.delete(state);
      }
    }
  }

  /** The groups holding float32 state, least recent first. */
  groups(): readonly string[] {
    return this.order.slice();
  }
}
