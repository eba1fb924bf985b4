import {
  type Collective,
  InputError,
  type OptimizerState,
  type ParamAccess,
  paramAccess,
  partitionedUpdate,
  rowAlignment,
  type ShardedTraining,
  type ShardingContext,
  type ShardingPlugin,
  SPECIFICATION_VERSION,
  stateRows,
  type ZeroStage,
} from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import {
  assignWhole,
  type Ownership,
  paddedElems,
  type RowOwnership,
  rowRange,
  rowsPerRank,
} from './ownership.ts';

export interface ZeroOptions {
  stage: ZeroStage;
  collective: Collective;
}

/** What a rank measured of its sharded state, beyond what the engine reports. */
export interface ZeroShardedTraining extends ShardedTraining {
  /** Who owns each trained parameter (stage 0: nobody, every rank holds everything). */
  readonly ownership: ReadonlyMap<string, Ownership>;
  /** Peak bytes of parameters gathered at once (stage 3: one segment's; other stages: 0). */
  gatheredPeakBytes(): number;
  /** Parameters of which this rank keeps optimizer state (a sharded checkpoint saves exactly these). */
  stateNames(): string[];
  /** Replaces this rank's optimizer state of `name` (restoring its checkpoint shard); the old tensors are freed. */
  setStateOf(name: string, state: OptimizerState): void;
  /** Stage 3: this rank's parameter shards (name → new float32 tensor, rows or whole), which the caller disposes. */
  readShards(): Record<string, tf.Tensor>;
  /** Stage 3: overwrites this rank's shard of `name` (shaped like `readShards()`'s) with `value`. */
  writeShard(name: string, value: tf.Tensor): void;
  /**
   * The part of the mean gradient over ranks that this rank owns (its rows, or the whole tensor at its owner; stage 0:
   * the whole gradient at rank 0), reduced with the same collective as `consume`; undefined where it owns nothing.
   * For passes that only measure gradients (LOMO's global norm). The caller disposes the result.
   */
  reduceOwned(name: string, grad: tf.Tensor): Promise<tf.Tensor | undefined>;
}

export interface ZeroPlugin extends ShardingPlugin {
  /** The engine-side object of the last `attach` (for reports and tests). */
  readonly attached: ZeroShardedTraining | undefined;
}

/**
 * ZeRO data parallelism over a `Collective` (see the README): stage 0 all-reduces every gradient; stage 1 also keeps
 * only this rank's part of the optimizer state (then all-gathers the updated parameters); stage 2 also reduce-scatters
 * each gradient as the backward pass releases it, so only this rank's shard stays; stage 3 also keeps only this
 * rank's shard of each parameter and all-gathers a segment's parameters just before its forward and its recompute.
 */
export function zero(options: ZeroOptions): ZeroPlugin {
  const { stage, collective } = options;
  if (![0, 1, 2, 3].includes(stage)) {
    throw new InputError(`ZeRO stage ${String(stage)} does not exist: use 0, 1, 2 or 3`, 'E_CONFIG');
  }
  let attached: ZeroShardedTraining | undefined;
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'sharding',
    name: `zero${stage}`,
    stage,
    collective,
    describe: () => ({ stage, ranks: collective.size, collective: collective.name }),
    get attached() {
      return attached;
    },
    attach(ctx) {
      attached = attachZero(stage, collective, ctx);
      return attached;
    },
  };
}

let shardId = 0;

/** A variable owning a copy of `make()` (refCount 1: in-place kernels may write it). */
function ownedVariable(make: () => tf.Tensor, base: string): tf.Variable {
  return tf.tidy(() => {
    const t = make();
    return tf.variable(t, false, `__kstar_zero_${base}_${shardId++}`, t.dtype);
  });
}

function attachZero(stage: ZeroStage, c: Collective, ctx: ShardingContext): ZeroShardedTraining {
  const { model, trained, optimizer, ledger } = ctx;
  const N = c.size;
  const me = c.rank;
  const states = new Map<string, OptimizerState>();
  const ownership = new Map<string, Ownership>();

  // Ownership and this rank's optimizer state, one parameter at a time (a full state exists only briefly).
  const whole = new Map<string, number>();
  const load = new Array(N).fill(0);
  for (const [name, v] of trained) {
    const info = model.paramInfo(name);
    const full = optimizer.init(info);
    if (stage === 0) {
      states.set(name, full);
      continue;
    }
    const aligned = rowAlignment(optimizer, v.shape, full);
    if (aligned == null) {
      whole.set(name, v.size);
      states.set(name, full); // kept until the owner is known
      continue;
    }
    const o: RowOwnership = {
      kind: 'rows',
      shape: v.shape,
      rowsPerRank: rowsPerRank(v.shape[0]!, N, aligned.rowStep),
      rowElems: v.size / v.shape[0]!,
      layout: aligned.layout,
    };
    ownership.set(name, o);
    for (let r = 0; r < N; r++) load[r] += rowRange(o, r).n * o.rowElems;
    const { r0, n } = rowRange(o, me);
    if (n > 0) states.set(name, stateRows(full, o.layout, v.shape, r0, n));
    tf.dispose(Object.values(full));
  }
  for (const [name, owner] of assignWhole(whole, N, load)) {
    ownership.set(name, { kind: 'whole', shape: trained.get(name)!.shape, owner });
    if (owner !== me) {
      tf.dispose(Object.values(states.get(name)!));
      states.delete(name);
    }
  }

  // Parameters: replicated (stages 0-2: the engine's usual access, master weights included) or this rank's shards.
  let store: ParamAccess;
  const shards = new Map<string, tf.Variable>();
  if (stage < 3) {
    store = paramAccess(model.variables, trained, ctx.masterWeights);
  } else {
    for (const [name, v] of trained) {
      const o = ownership.get(name)!;
      if (o.kind === 'rows') {
        const { r0, n } = rowRange(o, me);
        if (n > 0)
          shards.set(
            name,
            ownedVariable(() => tf.slice(v, r0, n), name),
          );
      } else if (o.owner === me) {
        shards.set(
          name,
          ownedVariable(() => tf.clone(v), name),
        );
      }
    }
    for (const v of trained.values()) v.dispose(); // a rank never holds the whole model again
    store = paramAccess(shards, shards, ctx.masterWeights);
  }

  const update = (p: tf.Variable, g: tf.Tensor, state: OptimizerState, step: number) => {
    if (ctx.updatePartition) partitionedUpdate(optimizer, p, g, state, step, ctx.updatePartition);
    else optimizer.update(p, g, state, step);
  };

  // [rowsPerRank·rowElems] flat, zero-padded: this rank's piece of a padded tensor, ready for all-gather.
  const padShard = (o: RowOwnership, shard: tf.Tensor | undefined): tf.Tensor =>
    tf.tidy(() => {
      const want = o.rowsPerRank * o.rowElems;
      if (!shard) return tf.zeros([want]);
      const flat = tf.reshape(shard, [-1]);
      return flat.size === want ? tf.clone(flat) : tf.pad(flat, [[0, want - flat.size]]);
    });
  // The padded flat all-gather result → the parameter [rows, ...rest].
  const unpad = (o: RowOwnership, gathered: tf.Tensor): tf.Tensor =>
    tf.tidy(() => {
      const size = o.shape.reduce((a, b) => a * b, 1);
      return tf.reshape(tf.slice(gathered, 0, size), o.shape as number[]);
    });
  // A gradient cut in row ranges, reduce-scattered: flat, zero-padded to every rank's rows, the mean over ranks;
  // this rank's padded rows come back [rowsPerRank·rowElems].
  const reduceScatterRows = async (o: RowOwnership, grad: tf.Tensor): Promise<tf.Tensor> => {
    const padded = tf.tidy(() => {
      const flat = tf.reshape(grad, [-1]);
      const want = paddedElems(o, N);
      return flat.size === want ? tf.clone(flat) : tf.pad(flat, [[0, want - flat.size]]);
    });
    const mine = await c.reduceScatter(padded, 'mean');
    padded.dispose();
    return mine;
  };
  /** Stage 1-2: update this rank's rows of the replicated parameter, then all-gather every rank's rows into it. */
  const updateRowsReplicated = async (
    name: string,
    o: RowOwnership,
    gShard: tf.Tensor | undefined,
    step: number,
  ) => {
    const { r0, n } = rowRange(o, me);
    let mine: tf.Tensor | undefined;
    if (gShard && n > 0) {
      store.update(name, (v) => {
        const p = ownedVariable(() => tf.slice(v, r0, n), name); // [n, ...rest]
        update(p, gShard, states.get(name)!, step);
        mine = p;
      });
    }
    const piece = padShard(o, mine);
    mine?.dispose();
    const gathered = await c.allGather(piece);
    piece.dispose();
    const full = unpad(o, gathered);
    gathered.dispose();
    store.update(name, (v) => v.assign(full));
    full.dispose();
  };

  /** Stage 1-2: the owner updates the whole replicated parameter, then broadcasts it. */
  const updateWholeReplicated = async (
    name: string,
    owner: number,
    g: tf.Tensor | undefined,
    step: number,
  ) => {
    let value: tf.Tensor | undefined;
    if (owner === me) {
      store.update(name, (v) => {
        update(v, g!, states.get(name)!, step);
        value = tf.clone(v);
      });
    } else {
      value = tf.zeros(ownership.get(name)!.shape as number[]);
    }
    const got = await c.broadcast(value!, owner);
    value!.dispose();
    if (owner !== me) store.update(name, (v) => v.assign(got));
    got.dispose();
  };

  // An empty tensor: a rank's part of a bucket where it owns no rows (its slot is all padding).
  const empty = tf.keep(tf.zeros([0]));
  const pieceElems = (o: RowOwnership) => o.rowsPerRank * o.rowElems;
  /** Whole-owned parameters among `names`, grouped by owner in rank order (the same groups on every rank). */
  const byOwner = (names: readonly string[]): Array<[number, string[]]> => {
    const groups = new Map<number, string[]>();
    for (const n of names) {
      const o = ownership.get(n);
      if (o?.kind !== 'whole') continue;
      groups.set(o.owner, [...(groups.get(o.owner) ?? []), n]);
    }
    return [...groups].sort((a, b) => a[0] - b[0]);
  };
  /** This rank's rows [n, ...rest] of a reduce-scattered padded chunk (undefined where it owns none); frees `chunk`. */
  const ownRows = (o: RowOwnership, chunk: tf.Tensor): tf.Tensor | undefined => {
    const { n } = rowRange(o, me);
    const out =
      n > 0
        ? tf.tidy(() => tf.reshape(tf.slice(chunk, 0, n * o.rowElems), [n, ...o.shape.slice(1)]))
        : undefined;
    chunk.dispose();
    return out;
  };

  // Stage 3: parameters gathered for the running segment (name → full tensor), freed by `release`.
  const gathered = new Map<string, tf.Tensor>();
  let gatheredBytes = 0;
  let gatheredPeak = 0;

  const training: ZeroShardedTraining = {
    ownership,
    materializes: stage === 3 || store.materializes,
    gatheredPeakBytes: () => gatheredPeak,

    async gather(names) {
      if (stage < 3) return;
      // One bucket for the segment's row-owned parameters (all-gather), one per owner of whole ones (broadcast).
      const missing = names.filter((n) => !gathered.has(n));
      const rowNames = missing.filter((n) => ownership.get(n)!.kind === 'rows');
      const held = store.read(rowNames.filter((n) => rowRange(ownership.get(n) as RowOwnership, me).n > 0));
      const fulls = new Map<string, tf.Tensor>();
      try {
        const gatheredRows = await c.allGatherBucket(
          rowNames.map((n) => held[n] ?? empty),
          rowNames.map((n) => pieceElems(ownership.get(n) as RowOwnership)),
        );
        rowNames.forEach((n, i) => {
          fulls.set(n, unpad(ownership.get(n) as RowOwnership, gatheredRows[i]!));
          gatheredRows[i]!.dispose();
        });
      } finally {
        store.release(held);
      }
      for (const [owner, wholeNames] of byOwner(missing)) {
        const own = owner === me ? store.read(wholeNames) : undefined;
        const mine = wholeNames.map((n) => own?.[n] ?? tf.zeros(ownership.get(n)!.shape as number[]));
        const got = await c.broadcastBucket(mine, owner);
        if (own) store.release(own);
        else tf.dispose(mine);
        wholeNames.forEach((n, i) => {
          fulls.set(n, got[i]!);
        });
      }
      for (const name of missing) {
        const full = fulls.get(name)!;
        gathered.set(name, full);
        gatheredBytes += 4 * full.size;
      }
      gatheredPeak = Math.max(gatheredPeak, gatheredBytes);
    },

    read(names) {
      if (stage < 3) return store.read(names);
      const out: Record<string, tf.Tensor> = {};
      for (const n of names) {
        const t = gathered.get(n);
        if (!t) throw new Error(`zero3: parameter '${n}' was read before gather(): call gather first`);
        out[n] = t;
      }
      return out;
    },

    release(params) {
      if (stage < 3) return store.release(params);
      for (const [name, t] of Object.entries(params)) {
        if (gathered.get(name) !== t) continue;
        gathered.delete(name);
        gatheredBytes -= 4 * t.size;
        t.dispose();
      }
    },

    update(name, fn) {
      if (stage < 3) return store.update(name, fn);
      throw new Error(`zero3: parameter '${name}' is sharded; updates go through consume()`);
    },

    bytes: () => store.bytes(),

    async consume(name, grad, step) {
      const o = ownership.get(name);
      if (stage === 0 || !o) {
        const g = await c.allReduce(grad, 'mean');
        ledger.tagGrad(g);
        try {
          store.update(name, (v) => update(v, g, states.get(name)!, step));
        } finally {
          g.dispose();
        }
        return;
      }
      if (o.kind === 'whole') {
        // Only the owner needs the mean gradient: reduced to it (half an all-reduce's traffic), the others send theirs.
        const g = await c.reduce(grad, o.owner, 'mean');
        if (g) ledger.tagGrad(g);
        try {
          if (stage === 3) {
            if (g) store.update(name, (v) => update(v, g, states.get(name)!, step));
          } else {
            await updateWholeReplicated(name, o.owner, g ?? undefined, step);
          }
        } finally {
          g?.dispose();
        }
        return;
      }
      // Row ranges: reduce-scatter, so only this rank's rows of the mean gradient arrive (stages 1-3 alike: with
      // gradient release no rank ever holds all gradients, so stage 1 already has stage 2's gradient saving).
      const mine = await reduceScatterRows(o, grad);
      ledger.tagGrad(mine);
      const { n } = rowRange(o, me);
      const gShard =
        n > 0
          ? tf.tidy(() => tf.reshape(tf.slice(mine, 0, n * o.rowElems), [n, ...o.shape.slice(1)]))
          : undefined;
      mine.dispose();
      if (gShard) ledger.tagGrad(gShard);
      try {
        if (stage === 3) {
          if (gShard) store.update(name, (p) => update(p, gShard!, states.get(name)!, step));
        } else {
          await updateRowsReplicated(name, o, gShard, step);
        }
      } finally {
        gShard?.dispose();
      }
    },

    async consumeBucket(grads, step) {
      // Reductions, one bucket per kind: all-reduce (stage 0), reduce-scatter (row ranges), reduce (per owner).
      const replicated = grads.filter(([n]) => stage === 0 || !ownership.get(n));
      const rows = stage === 0 ? [] : grads.filter(([n]) => ownership.get(n)?.kind === 'rows');
      const rowOf = (n: string) => ownership.get(n) as RowOwnership;
      const gradOf = new Map(grads);
      if (replicated.length > 0) {
        const gs = await c.allReduceBucket(
          replicated.map(([, g]) => g),
          'mean',
        );
        try {
          replicated.forEach(([name], i) => {
            ledger.tagGrad(gs[i]!);
            store.update(name, (v) => update(v, gs[i]!, states.get(name)!, step));
          });
        } finally {
          tf.dispose(gs);
        }
      }
      if (stage === 0) return;

      const chunks = await c.reduceScatterBucket(
        rows.map(([, g]) => g),
        rows.map(([n]) => paddedElems(rowOf(n), N)),
        'mean',
      );
      for (const t of chunks) ledger.tagGrad(t);
      const shardsOf = rows.map(([n], i) => ownRows(rowOf(n), chunks[i]!));
      for (const g of shardsOf) if (g) ledger.tagGrad(g);
      const pieces: tf.Tensor[] = [];
      try {
        rows.forEach(([name], i) => {
          const gShard = shardsOf[i];
          if (stage === 3) {
            if (gShard) store.update(name, (p) => update(p, gShard, states.get(name)!, step));
            return;
          }
          // Stages 1-2: update this rank's rows of the replicated parameter; all-gathered below.
          const { r0, n } = rowRange(rowOf(name), me);
          if (!gShard || n === 0) {
            pieces.push(empty);
            return;
          }
          store.update(name, (v) => {
            const p = ownedVariable(() => tf.slice(v, r0, n), name); // [n, ...rest]
            update(p, gShard, states.get(name)!, step);
            pieces.push(p);
          });
        });
      } finally {
        tf.dispose(shardsOf.filter((g) => g !== undefined));
      }
      if (stage < 3 && rows.length > 0) {
        const all = await c.allGatherBucket(
          pieces,
          rows.map(([n]) => pieceElems(rowOf(n))),
        );
        tf.dispose(pieces.filter((p) => p !== empty));
        rows.forEach(([name], i) => {
          const full = unpad(rowOf(name), all[i]!);
          store.update(name, (v) => v.assign(full));
          full.dispose();
        });
        tf.dispose(all);
      }

      for (const [owner, names] of byOwner(grads.map(([n]) => n))) {
        // Only the owner needs the mean gradient: reduced to it (half an all-reduce's traffic).
        const gs = await c.reduceBucket(
          names.map((n) => gradOf.get(n)!),
          owner,
          'mean',
        );
        const values: tf.Tensor[] = [];
        try {
          names.forEach((name, i) => {
            const g = gs[i];
            if (g) ledger.tagGrad(g);
            if (owner !== me) {
              if (stage < 3) values.push(tf.zeros(ownership.get(name)!.shape as number[]));
              return;
            }
            store.update(name, (v) => {
              update(v, g!, states.get(name)!, step);
              if (stage < 3) values.push(tf.clone(v));
            });
          });
        } finally {
          tf.dispose(gs);
        }
        if (stage === 3) continue;
        // Stages 1-2: the owner's updated parameters, broadcast.
        const got = await c.broadcastBucket(values, owner);
        tf.dispose(values);
        if (owner !== me) {
          names.forEach((name, i) => {
            store.update(name, (v) => v.assign(got[i]!));
          });
        }
        tf.dispose(got);
      }
    },

    async mean(value) {
      if (N === 1) return value;
      const t = tf.scalar(value);
      const m = await c.allReduce(t, 'mean');
      t.dispose();
      const out = (await m.data())[0]!;
      m.dispose();
      return out;
    },

    stateTensors() {
      const all: tf.Tensor[] = [];
      for (const s of states.values()) all.push(...Object.values(s));
      return all;
    },

    stateOf: (name) => states.get(name),

    async reduceOwned(name, grad) {
      const o = ownership.get(name);
      if (stage === 0 || !o || o.kind === 'whole') {
        const g = await c.reduce(grad, o?.kind === 'whole' ? o.owner : 0, 'mean');
        return g ?? undefined;
      }
      const mine = await reduceScatterRows(o, grad);
      const { n } = rowRange(o, me);
      const out = n > 0 ? tf.slice(mine, 0, n * o.rowElems) : undefined; // padding rows are zeros: dropped
      mine.dispose();
      return out;
    },

    stateNames: () => [...states.keys()],

    setStateOf(name, state) {
      const old = states.get(name);
      if (!old) {
        throw new InputError(
          `zero${stage}: rank ${me} keeps no optimizer state for '${name}': restore the shard this rank wrote (same rank count)`,
          'E_CHECKPOINT',
        );
      }
      const keep = new Set(Object.values(state));
      tf.dispose(Object.values(old).filter((t) => !keep.has(t)));
      states.set(name, state);
    },

    readShards() {
      if (stage < 3) return {};
      const names = [...shards.keys()];
      const held = store.read(names);
      const out: Record<string, tf.Tensor> = {};
      for (const n of names) out[n] = tf.clone(held[n]!);
      store.release(held);
      return out;
    },

    writeShard(name, value) {
      const shard = shards.get(name);
      if (stage < 3 || !shard) {
        throw new InputError(
          `zero${stage}: rank ${me} holds no shard of '${name}': restore the shard this rank wrote (same rank count)`,
          'E_CHECKPOINT',
        );
      }
      if (value.shape.join() !== shard.shape.join()) {
        throw new InputError(
          `zero3: the saved shard of '${name}' is [${value.shape}], rank ${me}'s is [${shard.shape}]: restore with the rank count that saved it`,
          'E_CHECKPOINT',
        );
      }
      store.update(name, (v) => v.assign(value));
    },

    dispose() {
      for (const s of states.values()) tf.dispose(Object.values(s));
      states.clear();
      tf.dispose([...gathered.values()]);
      gathered.clear();
      // Stage 3's shards (a master-weights plugin adopted and freed them; its own dispose frees its storage).
      for (const v of shards.values()) if (!v.isDisposed) v.dispose();
      shards.clear();
      empty.dispose();
    },
  };
  // Tensors made above exist before the engine's first window: count them.
  ledger.adopt(training.stateTensors());
  return training;
}
