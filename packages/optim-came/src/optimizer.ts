import { InputError, ShapeError, stateVariable } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { type CameHparams, type CameOptions, checkHparam, resolveCameHparams } from './hparams.ts';
import { cameUpdate } from './kernel.ts';
import type { CameImpl } from './plugin.ts';
import {
  type CameState,
  type CameStateKey,
  createCameState,
  FACTORED_KEYS,
  stateShapes,
  VECTOR_KEYS,
} from './state.ts';

/** The serialisable configuration of `CAME` (what tfjs-layers writes as `optimizer_config.config`). */
export interface CameConfig extends tf.serialization.ConfigDict {
  learningRate: number;
  beta1: number;
  beta2: number;
  beta3: number;
  eps1: number;
  eps2: number;
  clipThreshold: number;
  weightDecay: number;
}

/** `{name, tensor}` as tfjs optimizers exchange weights (tfjs-core does not export the type from its root). */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

const ALL_KEYS: readonly CameStateKey[] = ['m', 'v', 'vRow', 'vCol', 'resRow', 'resCol'];

/** Splits `<variable>/<key>` into its variable name and state key (null when the suffix is not a CAME key). */
function splitWeightName(name: string): { varName: string; key: CameStateKey } | null {
  const slash = name.lastIndexOf('/');
  if (slash <= 0) return null;
  const key = name.slice(slash + 1) as CameStateKey;
  return ALL_KEYS.includes(key) ? { varName: name.slice(0, slash), key } : null;
}

/**
 * A drop-in `tf.train.Optimizer` running CAME (`came_pytorch.CAME` semantics) through the fused in-place kernels,
 * for plain tfjs (`minimize`, `applyGradients`) and tfjs-layers (`model.compile({optimizer: new CAME({lr})})`,
 * `fit`, `save({includeOptimizer: true})`).
 *
 * State is keyed by **variable name**, never by position in the gradient list, so updating a different subset or
 * order of variables is safe; each variable is updated on its own. Weights are named `<variable>/<key>` with
 * keys `m`, `vRow`, `vCol`, `resRow`, `resCol` (rank ≥ 2) or `m`, `v` (rank ≤ 1), after the int32 `iter`.
 */
export class CAME extends tf.Optimizer {
  /** @nocollapse */
  static get className(): string {
    return 'CAME';
  }

  private lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly beta3: number;
  readonly eps1: number;
  readonly eps2: number;
  readonly clipThreshold: number;
  readonly weightDecay: number;
  private readonly impl: CameImpl;
  /** State by variable name; insertion order is the order of `getWeights`. */
  private readonly states = new Map<string, CameState>();
  /** The `iter` scalar of the last `getWeights`, owned here (tfjs-layers' `save` never disposes it). */
  private iterTensor: tf.Tensor | null = null;

  constructor(options: CameOptions & { impl?: CameImpl }) {
    super();
    const { impl = 'auto', ...rest } = (options ?? {}) as CameOptions & { impl?: CameImpl };
    if (impl !== 'auto' && impl !== 'fallback') {
      throw new InputError(
        `CAME: impl = ${JSON.stringify(impl)} is invalid: it must be 'auto' or 'fallback'`,
      );
    }
    const hp = resolveCameHparams(options == null ? options : rest, 'CAME');
    this.lr = hp.lr;
    this.beta1 = hp.beta1;
    this.beta2 = hp.beta2;
    this.beta3 = hp.beta3;
    this.eps1 = hp.eps1;
    this.eps2 = hp.eps2;
    this.clipThreshold = hp.clipThreshold;
    this.weightDecay = hp.weightDecay;
    this.impl = impl;
  }

  /** The learning rate; settable between steps (schedules), validated like the constructor option. */
  get learningRate(): number {
    return this.lr;
  }
  set learningRate(value: number) {
    this.lr = checkHparam('lr', value, 'CAME');
  }

  /** The hyper-parameters under K* names. */
  get hparams(): CameHparams {
    return {
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      beta3: this.beta3,
      eps1: this.eps1,
      eps2: this.eps2,
      clipThreshold: this.clipThreshold,
      weightDecay: this.weightDecay,
    };
  }

  /** The state of one variable (live state variables, do not dispose), or undefined before its first update. */
  stateOf(variableName: string): CameState | undefined {
    return this.states.get(variableName);
  }

  /** Names of the variables that have state. */
  stateNames(): string[] {
    return [...this.states.keys()];
  }

  /**
   * One CAME step for every variable with a gradient. Targets are looked up by name among the registered
   * variables; entries with a null gradient are skipped (their state is untouched). Gradients are not disposed.
   */
  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries: [string, tf.Tensor | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.entries(variableGradients);
    const hp = this.hparams;
    const registered = tf.engine().registeredVariables;
    for (const [name, grad] of entries) {
      if (grad == null) continue;
      const param = registered[name];
      if (param == null) {
        throw new InputError(
          `CAME.applyGradients: no registered variable is named '${name}': gradients must be keyed by variable name`,
        );
      }
      let s = this.states.get(name);
      if (s == null) {
        s = createCameState(name, param.shape);
        this.states.set(name, s);
      } else if (!tf.util.arraysEqual(s.m.shape, param.shape)) {
        throw new ShapeError(
          `CAME: the state of '${name}' has shape [${s.m.shape}] but the variable has [${param.shape}]: restore state saved for this model`,
        );
      }
      cameUpdate(param, grad, s, hp, { impl: this.impl });
    }
    this.incrementIterations();
  }

  /** Disposes every state variable; the instance may keep training (state is recreated as zeros). */
  override dispose(): void {
    this.disposeStates();
    this.iterTensor?.dispose();
    this.iterTensor = null;
  }

  private disposeStates(): void {
    for (const s of this.states.values()) tf.dispose(Object.values(s));
    this.states.clear();
  }

  /**
   * `[iter, …'<var>/<key>']`: the int32 scalar `iter` first, then each variable's state in first-update order,
   * keys `m, vRow, vCol, resRow, resCol` (rank ≥ 2) or `m, v` (rank ≤ 1). Every tensor stays owned by the
   * optimizer: states are the live variables (read them before the next step: the kernels write in place), and
   * `iter` lives until the next `getWeights` or `dispose` (disposing it earlier is harmless).
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const iter = await this.saveIterations();
    this.iterTensor?.dispose();
    this.iterTensor = iter.tensor;
    const out: NamedTensor[] = [{ name: iter.name, tensor: iter.tensor }];
    for (const [varName, s] of this.states) {
      const keys = 'vRow' in s ? FACTORED_KEYS : VECTOR_KEYS;
      for (const key of keys) {
        out.push({ name: `${varName}/${key}`, tensor: (s as unknown as Record<string, tf.Variable>)[key]! });
      }
    }
    return out;
  }

  /**
   * Replaces all state with `[iter, …]` as `getWeights` writes it, matched by name (`<var>/<key>`, any order).
   * Every variable needs its complete, shape-consistent set of keys. The values are copied, so the caller may
   * dispose its tensors afterwards. Nothing changes when the input is rejected.
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    if (weightValues.length === 0 || weightValues[0]!.name !== 'iter') {
      throw new InputError(
        `CAME.setWeights: the first entry must be 'iter' (as getWeights writes it), got '${weightValues[0]?.name ?? 'nothing'}'`,
      );
    }
    const found = new Map<string, Map<CameStateKey, tf.Tensor>>();
    for (const w of weightValues.slice(1)) {
      const parts = splitWeightName(w.name);
      if (parts == null) {
        throw new InputError(
          `CAME.setWeights: weight '${w.name}' is not '<variable>/<key>' with key one of ${ALL_KEYS.join(', ')}`,
        );
      }
      const entry = found.get(parts.varName) ?? new Map<CameStateKey, tf.Tensor>();
      if (entry.has(parts.key)) throw new InputError(`CAME.setWeights: weight '${w.name}' appears twice`);
      if (w.tensor.dtype !== 'float32') {
        throw new InputError(
          `CAME.setWeights: weight '${w.name}' has dtype ${w.tensor.dtype}, expected float32`,
        );
      }
      entry.set(parts.key, w.tensor);
      found.set(parts.varName, entry);
    }
    const values: { varName: string; tensors: { key: string; shape: number[]; data: Float32Array }[] }[] = [];
    for (const [varName, entry] of found) {
      const m = entry.get('m');
      if (m == null) throw new InputError(`CAME.setWeights: variable '${varName}' has no '${varName}/m'`);
      const expected = stateShapes(m.shape);
      const want = Object.keys(expected);
      const have = [...entry.keys()];
      if (want.length !== have.length || !want.every((k) => entry.has(k as CameStateKey))) {
        throw new InputError(
          `CAME.setWeights: variable '${varName}' (m of shape [${m.shape}]) needs exactly ${want.join(', ')}, got ${have.join(', ')}`,
        );
      }
      const tensors: { key: string; shape: number[]; data: Float32Array }[] = [];
      for (const key of want as CameStateKey[]) {
        const t = entry.get(key)!;
        if (!tf.util.arraysEqual(t.shape, expected[key]!)) {
          throw new ShapeError(
            `CAME.setWeights: '${varName}/${key}' has shape [${t.shape}], expected [${expected[key]}] for m of shape [${m.shape}]`,
          );
        }
        tensors.push({ key, shape: t.shape, data: (await t.data()) as Float32Array });
      }
      values.push({ varName, tensors });
    }
    // Only now that everything checked out: the iteration count, then the state (copied into new variables,
    // created after the old ones are gone so that they get the plain names `<var>/<key>`).
    await this.extractIterations(weightValues);
    this.disposeStates();
    for (const { varName, tensors } of values) {
      const s: Record<string, tf.Variable> = {};
      for (const { key, shape, data } of tensors)
        s[key] = stateVariable(`${varName}/${key}`, shape, { values: data });
      this.states.set(varName, s as unknown as CameState);
    }
  }

  override getConfig(): CameConfig {
    return {
      learningRate: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      beta3: this.beta3,
      eps1: this.eps1,
      eps2: this.eps2,
      clipThreshold: this.clipThreshold,
      weightDecay: this.weightDecay,
    };
  }

  /** @nocollapse Accepts `getConfig()` output (also with snake_case keys, as tfjs-layers may convert them). */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const pick = (...keys: string[]) => {
      for (const k of keys) if (config[k] != null) return config[k] as number;
      return undefined;
    };
    const options = {
      lr: pick('learningRate', 'learning_rate', 'lr'),
      beta1: pick('beta1', 'beta_1'),
      beta2: pick('beta2', 'beta_2'),
      beta3: pick('beta3', 'beta_3'),
      eps1: pick('eps1', 'eps_1'),
      eps2: pick('eps2', 'eps_2'),
      clipThreshold: pick('clipThreshold', 'clip_threshold'),
      weightDecay: pick('weightDecay', 'weight_decay'),
    };
    // Drop absent keys so the defaults apply (an explicit undefined lr still fails as "lr is required").
    const given = Object.fromEntries(
      Object.entries(options).filter(([k, v]) => v !== undefined || k === 'lr'),
    );
    return new (cls as unknown as new (o: CameOptions) => T)(given as CameOptions);
  }
}

tf.serialization.registerClass(CAME);
