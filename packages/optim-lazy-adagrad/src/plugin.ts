import {
  checkStep,
  InputError,
  type OptimizerPlugin,
  type OptimizerState,
  optimizerHead,
  type ParamInfo,
  type PluginMethods,
  splitImpl,
} from '@kstar/core';
import type * as tf from '@tensorflow/tfjs-core';
import {
  LAZY_ADAGRAD_HPARAMS,
  type LazyAdagradHparams,
  type LazyAdagradOptions,
  type LazyAdagradReferenceHparams,
  resolveHparams,
} from './hparams.ts';
import { lazyAdagradUpdate } from './kernel.ts';
import {
  allocateRows,
  compress,
  countAllocated,
  createState,
  expand,
  isLazy,
  type LazyAdagradState,
  type StateMeta,
} from './state.ts';
import { denseStateBytes, lazyRowStateBytes } from './state-bytes.ts';
import { GroupWindow } from './window.ts';

export type LazyAdagradImpl = 'auto' | 'fallback';

/** The `lazy-adagrad` optimizer plugin. */
export interface LazyAdagradPlugin extends OptimizerPlugin {
  readonly name: 'lazy-adagrad';
  /** The hyper-parameters the next update uses (`lr` follows `learningRate`). */
  readonly hparams: LazyAdagradHparams;
  learningRate: number;
  /** Whether a parameter gets row-lazy state under this plugin's `lazyRows`. */
  isRowLazy(param: Pick<ParamInfo, 'shape' | 'role'>): boolean;
  /** Row-lazy state: distinct rows allocated so far (measured from the state); null for dense state. */
  rowsTouched(state: OptimizerState): number | null;
  /**
   * Exact bytes of a parameter's state: dense 4·numel; row-lazy 4·V + 4·capacity(rowsTouched)·d (`rowsTouched`
   * defaults to all rows, the worst case); `quantized`: as stored outside the window.
   */
  stateBytesFor(
    shape: readonly number[],
    rowsTouched?: number,
    options?: { role?: ParamInfo['role']; quantized?: boolean },
  ): number;
  /** Windowed mode: the groups whose accumulators are float32 now, least recent first (empty when off). */
  windowGroups(): readonly string[];
  /** The group key of a parameter name (the window's unit). */
  groupOf(name: string): string;
}

/**
 * Lazy Adagrad: `torch.optim.Adagrad` (lr_decay 0, weight_decay 0) with memory-saving state layouts, exact unless
 * the window is on. Per element: acc ← acc + g²;  p ← p − lr·g/(√acc + eps)  (`epsInsideSqrt`: /√(acc + eps), Keras).
 *
 * - **Row-lazy** (`lazyRows`, default `'embedding'`): a [V, d] parameter keeps an int32 row map [V] and a float32
 *   slab of the rows seen so far (doubling growth, allocated at `initialAccumulatorValue` on first touch). Rows whose
 *   gradient is all zero are not touched: parameter and accumulator unchanged, exactly as Adagrad (a zero gradient
 *   changes nothing). Needs synchronous read-back to find the rows (cpu, wasm, tensorflow); on webgpu in Node the
 *   first update allocates every row (exact, no saving).
 * - **Windowed** (`window: K`): only the K parameter groups most recently updated keep float32 accumulators; the
 *   others are stored 8-bit (block 256 absmax, linear unsigned codes, four per int32) and expanded when their
 *   group's gradients arrive. Group = `groupOf(ParamInfo.name)`, default the prefix before the first '.'. Lossy:
 *   each eviction rounds every accumulator to ≤ ½·absmax/255 of its block.
 */
export function lazyAdagrad(
  options: LazyAdagradOptions & { impl?: LazyAdagradImpl } = {},
): LazyAdagradPlugin {
  const { impl, rest } = splitImpl(options, 'lazyAdagrad');
  const resolved = resolveHparams(rest, 'lazyAdagrad');
  const { groupOf, ...hp0 } = resolved;
  const head = optimizerHead<LazyAdagradHparams, 'lazy-adagrad'>(
    'lazy-adagrad',
    LAZY_ADAGRAD_HPARAMS,
    Object.freeze(hp0),
  );
  const window =
    head.hparams.window == null ? null : new GroupWindow(head.hparams.window, head.hparams.windowEncoding);
  const metas = new WeakMap<object, StateMeta>();
  const isRowLazy = (p: Pick<ParamInfo, 'shape' | 'role'>) =>
    p.shape.length === 2 &&
    (head.hparams.lazyRows === 'matrices' ||
      (head.hparams.lazyRows === 'embedding' && p.role === 'embedding'));
  const stateBytesFor: LazyAdagradPlugin['stateBytesFor'] = (shape, rowsTouched, o = {}) => {
    const lazy = isRowLazy({ shape, role: o.role ?? 'matrix' });
    if (!lazy) return denseStateBytes(shape, { quantized: o.quantized });
    return lazyRowStateBytes(shape, rowsTouched ?? shape[0]!, { quantized: o.quantized });
  };
  const metaOf = (param: tf.Variable, state: LazyAdagradState): StateMeta => {
    let meta = metas.get(state);
    if (meta == null) {
      // A state this plugin did not create (restored elsewhere): group it by the variable's name.
      meta = { name: param.name, group: groupOf(param.name) };
      metas.set(state, meta);
      window?.register(state, meta);
    }
    return meta;
  };
  return Object.assign(head, {
    describe() {
      return {
        ...head.hparams,
        groupOf: options.groupOf == null ? 'prefix before the first "."' : 'custom',
        impl,
        reference: 'torch.optim.Adagrad (lr_decay 0, weight_decay 0)',
      };
    },
    isRowLazy,
    groupOf,
    init(param) {
      const lazy = isRowLazy(param);
      const state = createState(param.name, param.shape, lazy, head.hparams.initialAccumulatorValue);
      const meta: StateMeta = { name: param.name, group: groupOf(param.name) };
      if (lazy) meta.rowsTouched = 0;
      metas.set(state, meta);
      if (window != null) {
        window.register(state, meta);
        compress(state, meta, head.hparams.windowEncoding); // the state starts outside the window (8-bit) until its first update
      }
      return state as OptimizerState;
    },
    update(param, grad, state, step) {
      const s = state as LazyAdagradState;
      if (s.acc == null && s.rowMap == null && s.accCodes == null) {
        throw new InputError(
          `lazyAdagrad: the state of parameter '${param.name}' has no accumulator (keys: ${Object.keys(state).join(', ') || 'none'}): create it with lazyAdagrad().init`,
        );
      }
      checkStep(step, 'lazyAdagrad');
      const meta = metaOf(param, s);
      window?.touch(meta.group);
      expand(s, meta, head.hparams.windowEncoding);
      const hp = { lr: head.hparams.lr, eps: head.hparams.eps, epsInsideSqrt: head.hparams.epsInsideSqrt };
      if (isLazy(s)) {
        const select = allocateRows(s, meta, grad, head.hparams.initialAccumulatorValue);
        if (s.acc == null) return; // no row touched yet and none before: nothing to update
        lazyAdagradUpdate({ param, grad, acc: s.acc, hp, select }, { impl });
      } else {
        lazyAdagradUpdate({ param, grad, acc: s.acc!, hp }, { impl });
      }
    },
    stateBytes(shape, role) {
      return stateBytesFor(shape, undefined, { role });
    },
    // Gradient partitioning for DENSE state with the window off (element-wise: `acc` laid out like the parameter).
    // Row-lazy state (a row map + slab) and windowed 8-bit state update whole. Bytes per element the update holds as
    // tf.profile counts them (partition test): fallback temporaries; the in-place kernel's output aliases.
    rowChunks: {
      stateLayout: (state) => {
        const s = state as LazyAdagradState;
        return window == null && s.acc != null && s.rowMap == null && s.accCodes == null ? { acc: 1 } : null;
      },
      updateBytesPerElement: () => (impl === 'fallback' ? 28 : 8),
    },
    stateBytesFor,
    rowsTouched(state) {
      const s = state as LazyAdagradState;
      if (!isLazy(s)) return null;
      const meta = metas.get(state);
      return meta?.rowsTouched ?? countAllocated(s.rowMap!);
    },
    windowGroups() {
      return window?.groups() ?? [];
    },
  } satisfies PluginMethods<LazyAdagradPlugin>);
}

/**
 * `lazyAdagrad()` from `torch.optim.Adagrad` hyper-parameters (`lr`, `eps`, `initial_accumulator_value`; `lr_decay`,
 * `weight_decay` only 0; `maximize` only false; `foreach`/`fused`/`differentiable` ignored), as the golden fixtures
 * and `kstar replay` carry them. Row-lazy for embeddings, window off: exactly torch's trajectory.
 */
export function lazyAdagradFromReferenceHparams(ref: LazyAdagradReferenceHparams): LazyAdagradPlugin {
  return lazyAdagrad(LAZY_ADAGRAD_HPARAMS.fromReference(ref));
}
