import { DropInOptimizer } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { type LazyAdagradImpl, type LazyAdagradPlugin, lazyAdagrad } from './plugin.ts';

/** Options of `new LazyAdagrad()`: the non-windowed hyper-parameters; `lazyRows` by rank only. */
export interface LazyAdagradClassOptions {
  lr?: number;
  eps?: number;
  initialAccumulatorValue?: number;
  epsInsideSqrt?: boolean;
  /** `'matrices'` (default): every rank-2 variable is row-lazy; `'off'`: dense state for all. */
  lazyRows?: 'matrices' | 'off';
  impl?: LazyAdagradImpl;
}

/**
 * A drop-in `tf.Optimizer` running Lazy Adagrad (torch semantics, exact): `lazyAdagrad()` behind `@kstar/core`'s
 * `DropInOptimizer`. Rank-2 variables get row-lazy state (`<variable>/rowMap` + a slab `<variable>/acc` of the rows
 * seen) unless `lazyRows: 'off'`. The windowed mode needs the engine's segment order and is plugin-only.
 */
export class LazyAdagrad extends DropInOptimizer<LazyAdagradPlugin> {
  /** @nocollapse */
  static get className(): string {
    return 'LazyAdagrad';
  }

  constructor(options: LazyAdagradClassOptions = {}) {
    super(lazyAdagrad({ lazyRows: 'matrices', ...options }));
  }

  /** Row-lazy variables: rows allocated so far; null for dense state or no state. */
  rowsTouched(variableName: string): number | null {
    const state = this.stateOf(variableName);
    return state == null ? null : this.plugin.rowsTouched(state);
  }
}

tf.serialization.registerClass(LazyAdagrad);
