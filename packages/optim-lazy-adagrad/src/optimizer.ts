import { InputError, ShapeError, stateVariableFrom } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { checkHparam, type LazyAdagradHparams, resolveHparams } from './hparams.ts';
import { lazyAdagradUpdate } from './kernel.ts';
import type { LazyAdagradImpl } from './plugin.ts';
import { allocateRows, createState, type LazyAdagradState, type StateMeta } from './state.ts';

/** `{name, tensor}` as tfjs optimizers exchange weights. */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

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

export interface LazyAdagradConfig extends tf.serialization.ConfigDict {
  learningRate: number;
  eps: number;
  initialAccumulatorValue: number;
  epsInsideSqrt: boolean;
  lazyRows: 'matrices' | 'off';
}

const ACC = '/accumulator';
const MAP = '/rowMap';

/**
 * A drop-in `tf.train.Optimizer` running Lazy Adagrad (torch semantics, exact) for plain tfjs (`minimize`,
 * `applyGradients`) and tfjs-layers (`compile`, `fit`, `save({includeOptimizer: true})`). State is keyed by
 * variable name. Rank-2 variables get row-lazy state (row map + slab of rows seen) unless `lazyRows: 'off'`.
 * The windowed mode needs the engine's segment order and is plugin-only.
 *
 * Weights: `[iter, …'<var>/accumulator' (dense: the parameter's shape; row-lazy: the slab [capacity, d], absent
 * until a row is touched), …'<var>/rowMap' (row-lazy, int32 [V])]`.
 */
export class LazyAdagrad extends tf.Optimizer {
  /** @nocollapse */
  static get className(): string {
    return 'LazyAdagrad';
  }

  private lr: number;
  readonly eps: number;
  readonly initialAccumulatorValue: number;
  readonly epsInsideSqrt: boolean;
  readonly lazyRows: 'matrices' | 'off';
  private readonly impl: LazyAdagradImpl;
  private readonly states = new Map<string, { state: LazyAdagradState; meta: StateMeta }>();
  private iterTensor: tf.Tensor | null = null;

  constructor(options: LazyAdagradClassOptions = {}) {
    super();
    const { impl = 'auto', lazyRows = 'matrices', ...rest } = options ?? {};
    if (impl !== 'auto' && impl !== 'fallback') {
      throw new InputError(
        `LazyAdagrad: impl = ${JSON.stringify(impl)} is invalid: it must be 'auto' or 'fallback'`,
      );
    }
    if (lazyRows !== 'matrices' && lazyRows !== 'off') {
      throw new InputError(
        `LazyAdagrad: lazyRows = ${JSON.stringify(lazyRows)} is invalid: it must be 'matrices' or 'off' (the windowed mode is plugin-only)`,
      );
    }
    const hp = resolveHparams(rest, 'LazyAdagrad');
    this.lr = hp.lr;
    this.eps = hp.eps;
    this.initialAccumulatorValue = hp.initialAccumulatorValue;
    this.epsInsideSqrt = hp.epsInsideSqrt;
    this.lazyRows = lazyRows;
    this.impl = impl;
  }

  get learningRate(): number {
    return this.lr;
  }
  set learningRate(value: number) {
    this.lr = checkHparam('lr', value, 'LazyAdagrad');
  }

  get hparams(): Omit<LazyAdagradHparams, 'window' | 'windowEncoding' | 'lazyRows'> & {
    lazyRows: 'matrices' | 'off';
  } {
    return {
      lr: this.lr,
      eps: this.eps,
      initialAccumulatorValue: this.initialAccumulatorValue,
      epsInsideSqrt: this.epsInsideSqrt,
      lazyRows: this.lazyRows,
    };
  }

  /** The state of one variable (live tensors, do not dispose), or undefined before its first update. */
  stateOf(variableName: string): LazyAdagradState | undefined {
    return this.states.get(variableName)?.state;
  }

  /** Row-lazy variables: rows allocated so far; null for dense state or no state. */
  rowsTouched(variableName: string): number | null {
    const s = this.states.get(variableName);
    return s?.state.rowMap == null ? null : (s.meta.rowsTouched ?? null);
  }

  stateNames(): string[] {
    return [...this.states.keys()];
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries: [string, tf.Tensor | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.entries(variableGradients);
    const hp = { lr: this.lr, eps: this.eps, epsInsideSqrt: this.epsInsideSqrt };
    const registered = tf.engine().registeredVariables;
    for (const [name, grad] of entries) {
      if (grad == null) continue;
      const param = registered[name];
      if (param == null) {
        throw new InputError(
          `LazyAdagrad.applyGradients: no registered variable is named '${name}': gradients must be keyed by variable name`,
        );
      }
      let s = this.states.get(name);
      if (s == null) {
        const lazy = this.lazyRows === 'matrices' && param.rank === 2;
        s = {
          state: createState(name, param.shape, lazy, this.initialAccumulatorValue),
          meta: { name, group: name, ...(lazy ? { rowsTouched: 0 } : {}) },
        };
        this.states.set(name, s);
      }
      const { state, meta } = s;
      if (state.rowMap != null) {
        if (state.rowMap.shape[0] !== param.shape[0]) {
          throw new ShapeError(
            `LazyAdagrad: the row map of '${name}' has ${state.rowMap.shape[0]} rows but the variable has [${param.shape}]`,
          );
        }
        const select = allocateRows(state, meta, grad, this.initialAccumulatorValue);
        if (state.acc != null)
          lazyAdagradUpdate({ param, grad, acc: state.acc, hp, select }, { impl: this.impl });
      } else {
        lazyAdagradUpdate({ param, grad, acc: state.acc!, hp }, { impl: this.impl });
      }
    }
    this.incrementIterations();
  }

  override dispose(): void {
    this.disposeStates();
    this.iterTensor?.dispose();
    this.iterTensor = null;
  }

  private disposeStates(): void {
    for (const { state } of this.states.values()) tf.dispose(Object.values(state) as tf.Tensor[]);
    this.states.clear();
  }

  /** `[iter, …accumulators, …row maps]`; all tensors stay owned by the optimizer (live state, read before the next step). */
  override async getWeights(): Promise<NamedTensor[]> {
    const iter = await this.saveIterations();
    this.iterTensor?.dispose();
    this.iterTensor = iter.tensor;
    const out: NamedTensor[] = [iter];
    for (const [name, { state }] of this.states) {
      if (state.acc != null) out.push({ name: `${name}${ACC}`, tensor: state.acc });
    }
    for (const [name, { state }] of this.states) {
      if (state.rowMap != null) out.push({ name: `${name}${MAP}`, tensor: state.rowMap });
    }
    return out;
  }

  /**
   * Replaces all state with `[iter, …]` as `getWeights` writes it (entries matched by name, any order; values
   * copied). A variable with a `/rowMap` entry is restored row-lazy. Nothing changes if an entry is invalid.
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    if (weightValues.length === 0 || weightValues[0]!.name !== 'iter') {
      throw new InputError(
        `LazyAdagrad.setWeights: the first entry must be 'iter' (as getWeights writes it), got '${weightValues[0]?.name ?? 'nothing'}'`,
      );
    }
    const byVar = new Map<string, { acc?: tf.Tensor; map?: tf.Tensor }>();
    for (const w of weightValues.slice(1)) {
      const kind = w.name.endsWith(ACC) ? 'acc' : w.name.endsWith(MAP) ? 'map' : null;
      if (kind == null) {
        throw new InputError(
          `LazyAdagrad.setWeights: weight '${w.name}' is not '<variable>${ACC}' or '<variable>${MAP}'`,
        );
      }
      const varName = w.name.slice(0, -(kind === 'acc' ? ACC : MAP).length);
      const entry = byVar.get(varName) ?? {};
      if (entry[kind] != null)
        throw new InputError(`LazyAdagrad.setWeights: weight '${w.name}' appears twice`);
      const want = kind === 'acc' ? 'float32' : 'int32';
      if (w.tensor.dtype !== want) {
        throw new InputError(
          `LazyAdagrad.setWeights: weight '${w.name}' has dtype ${w.tensor.dtype}, expected ${want}`,
        );
      }
      entry[kind] = w.tensor;
      byVar.set(varName, entry);
    }
    for (const [varName, { acc, map }] of byVar) {
      const param = tf.engine().registeredVariables[varName];
      if (map != null) {
        if (acc != null && (acc.rank !== 2 || acc.shape[1] !== (param?.shape[1] ?? acc.shape[1]))) {
          throw new ShapeError(`LazyAdagrad.setWeights: slab '${varName}${ACC}' has shape [${acc.shape}]`);
        }
        if (param != null && map.shape[0] !== param.shape[0]) {
          throw new ShapeError(
            `LazyAdagrad.setWeights: '${varName}${MAP}' has ${map.shape[0]} rows but variable '${varName}' has [${param.shape}]`,
          );
        }
      } else if (acc == null) {
        throw new InputError(`LazyAdagrad.setWeights: '${varName}' has neither an accumulator nor a row map`);
      } else if (param != null && !tf.util.arraysEqual(param.shape, acc.shape)) {
        throw new ShapeError(
          `LazyAdagrad.setWeights: '${varName}${ACC}' has shape [${acc.shape}] but variable '${varName}' has [${param.shape}]`,
        );
      }
    }
    const values = await Promise.all(
      [...byVar].map(async ([varName, { acc, map }]) => ({
        varName,
        acc: acc && { shape: acc.shape, data: Float32Array.from((await acc.data()) as Float32Array) },
        map: map && { shape: map.shape, data: Int32Array.from((await map.data()) as Int32Array) },
      })),
    );
    await this.extractIterations(weightValues);
    this.disposeStates();
    for (const { varName, acc, map } of values) {
      const state: LazyAdagradState = {};
      const meta: StateMeta = { name: varName, group: varName };
      if (acc)
        state.acc = stateVariableFrom(`${varName}${ACC}`, () => tf.tensor(acc.data, acc.shape, 'float32'));
      if (map) {
        state.rowMap = stateVariableFrom(`${varName}${MAP}`, () => tf.tensor(map.data, map.shape, 'int32'));
        meta.rowsTouched = map.data.reduce((n, s) => n + (s >= 0 ? 1 : 0), 0);
      }
      this.states.set(varName, { state, meta });
    }
  }

  override getConfig(): LazyAdagradConfig {
    return {
      learningRate: this.lr,
      eps: this.eps,
      initialAccumulatorValue: this.initialAccumulatorValue,
      epsInsideSqrt: this.epsInsideSqrt,
      lazyRows: this.lazyRows,
    };
  }

  /** @nocollapse Accepts `getConfig()` output, also with snake_case keys (tfjs-layers may convert them). */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const pick = (...keys: string[]) => {
      for (const k of keys) if (config[k] != null) return config[k];
      return undefined;
    };
    const options: LazyAdagradClassOptions = {
      lr: pick('learningRate', 'learning_rate', 'lr') as number | undefined,
      eps: pick('eps', 'epsilon') as number | undefined,
      initialAccumulatorValue: pick('initialAccumulatorValue', 'initial_accumulator_value') as
        | number
        | undefined,
      epsInsideSqrt: pick('epsInsideSqrt', 'eps_inside_sqrt') as boolean | undefined,
      lazyRows: pick('lazyRows', 'lazy_rows') as 'matrices' | 'off' | undefined,
    };
    for (const k of Object.keys(options) as (keyof LazyAdagradClassOptions)[]) {
      if (options[k] === undefined) delete options[k];
    }
    return new (cls as unknown as new (o: LazyAdagradClassOptions) => T)(options);
  }
}

tf.serialization.registerClass(LazyAdagrad);
