import { InputError, ShapeError, stateVariable } from '@kstar/core';
import { adamwUpdate } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { type AdamWHparams, type AdamWOptions, checkHparam, resolveAdamWHparams } from './hparams.ts';
import type { AdamWImpl } from './plugin.ts';

/** The serialisable configuration of `AdamW` (what tfjs-layers writes as `optimizer_config.config`). */
export interface AdamWConfig extends tf.serialization.ConfigDict {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

/** `{name, tensor}` as tfjs optimizers exchange weights (tfjs-core does not export the type from its root). */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

interface Moments {
  m: NamedTensor & { tensor: tf.Variable };
  v: NamedTensor & { tensor: tf.Variable };
}

const suffixes = { m: '/m', v: '/v' } as const;

/**
 * A drop-in `tf.train.Optimizer` running AdamW (torch.optim.AdamW semantics) through the fused in-place
 * `adamwUpdate` kernel, for plain tfjs (`minimize`, `applyGradients`) and tfjs-layers
 * (`model.compile({optimizer: new AdamW()})`, `fit`, `save({includeOptimizer: true})`).
 *
 * Unlike `tf.train.adam`, the moments are keyed by **variable name**, never by position in the gradient list, so
 * updating a different subset or order of variables is safe; each variable is updated on its own (no tidy spanning
 * all of them) and, where the kernel runs in place, with no param-sized temporary.
 *
 * Bias correction uses the optimizer's global step `iterations + 1` (as `tf.train.adam` does), so a variable
 * first updated at step k starts with step k's correction, not step 1's as in torch's per-parameter counter.
 */
export class AdamW extends tf.Optimizer {
  /** @nocollapse */
  static get className(): string {
    return 'AdamW';
  }

  private lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  private readonly impl: AdamWImpl;
  /** Moments by variable name; insertion order is the order of `getWeights`. */
  private readonly moments = new Map<string, Moments>();
  /** The `iter` scalar of the last `getWeights`, owned here (tfjs-layers' `save` never disposes it). */
  private iterTensor: tf.Tensor | null = null;

  constructor(options: AdamWOptions & { impl?: AdamWImpl } = {}) {
    super();
    const { impl = 'auto', ...rest } = options ?? {};
    if (impl !== 'auto' && impl !== 'fallback') {
      throw new InputError(
        `AdamW: impl = ${JSON.stringify(impl)} is invalid: it must be 'auto' or 'fallback'`,
      );
    }
    const hp = resolveAdamWHparams(rest, 'AdamW');
    this.lr = hp.lr;
    this.beta1 = hp.beta1;
    this.beta2 = hp.beta2;
    this.epsilon = hp.eps;
    this.weightDecay = hp.weightDecay;
    this.impl = impl;
  }

  /** The learning rate; settable between steps (schedules), validated like the constructor option. */
  get learningRate(): number {
    return this.lr;
  }
  set learningRate(value: number) {
    this.lr = checkHparam('lr', value, 'AdamW');
  }

  /** The hyper-parameters under K* names. */
  get hparams(): AdamWHparams {
    return {
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.epsilon,
      weightDecay: this.weightDecay,
    };
  }

  /** The moments of one variable (live state variables, do not dispose), or undefined before its first update. */
  stateOf(variableName: string): { m: tf.Variable; v: tf.Variable } | undefined {
    const s = this.moments.get(variableName);
    return s && { m: s.m.tensor, v: s.v.tensor };
  }

  /** Names of the variables that have state. */
  stateNames(): string[] {
    return [...this.moments.keys()];
  }

  /**
   * One AdamW step for every variable with a gradient. Targets are looked up by name among the registered
   * variables; entries with a null gradient are skipped (their state is untouched). Gradients are not disposed.
   */
  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries: [string, tf.Tensor | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.entries(variableGradients);
    const step = this.iterations + 1;
    const hp = {
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.epsilon,
      weightDecay: this.weightDecay,
      step,
    };
    const registered = tf.engine().registeredVariables;
    for (const [name, grad] of entries) {
      if (grad == null) continue;
      const param = registered[name];
      if (param == null) {
        throw new InputError(
          `AdamW.applyGradients: no registered variable is named '${name}': gradients must be keyed by variable name`,
        );
      }
      let s = this.moments.get(name);
      if (s == null) {
        s = {
          m: { name: `${name}${suffixes.m}`, tensor: stateVariable(`${name}${suffixes.m}`, param.shape) },
          v: { name: `${name}${suffixes.v}`, tensor: stateVariable(`${name}${suffixes.v}`, param.shape) },
        };
        this.moments.set(name, s);
      } else if (!tf.util.arraysEqual(s.m.tensor.shape, param.shape)) {
        throw new ShapeError(
          `AdamW: the state of '${name}' has shape [${s.m.tensor.shape}] but the variable has [${param.shape}]: restore state saved for this model`,
        );
      }
      adamwUpdate(param, grad, s.m.tensor, s.v.tensor, hp, { impl: this.impl });
    }
    this.incrementIterations();
  }

  /** Disposes every state variable; the instance may keep training (state is recreated as zeros). */
  override dispose(): void {
    this.disposeMoments();
    this.iterTensor?.dispose();
    this.iterTensor = null;
  }

  private disposeMoments(): void {
    for (const s of this.moments.values()) {
      s.m.tensor.dispose();
      s.v.tensor.dispose();
    }
    this.moments.clear();
  }

  /**
   * `[iter, …'<var>/m', …'<var>/v']` (tf.train.adam's layout, int32 scalar `iter` first). Every tensor stays
   * owned by the optimizer: the moments are the live state variables, and `iter` lives until the next
   * `getWeights` or `dispose` (disposing it earlier is harmless). Read them before the next step: on cpu,
   * wasm and webgpu the kernel updates the moments in place.
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const iter = await this.saveIterations();
    this.iterTensor?.dispose();
    this.iterTensor = iter.tensor;
    const all = [...this.moments.values()];
    return [iter, ...all.map((s) => s.m), ...all.map((s) => s.v)].map((w) => ({
      name: w.name,
      tensor: w.tensor,
    }));
  }

  /**
   * Replaces all state with `[iter, …]` as `getWeights` writes it, matched by name (`<var>/m`, `<var>/v`, any
   * order). The values are copied, so the caller may dispose its tensors afterwards.
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    if (weightValues.length === 0 || weightValues[0]!.name !== 'iter') {
      throw new InputError(
        `AdamW.setWeights: the first entry must be 'iter' (as getWeights writes it), got '${weightValues[0]?.name ?? 'nothing'}'`,
      );
    }
    const rest = weightValues.slice(1);
    const found = new Map<string, { m?: NamedTensor; v?: NamedTensor }>();
    for (const w of rest) {
      const kind = w.name.endsWith(suffixes.m) ? 'm' : w.name.endsWith(suffixes.v) ? 'v' : null;
      if (kind == null) {
        throw new InputError(`AdamW.setWeights: weight '${w.name}' is not '<variable>/m' or '<variable>/v'`);
      }
      const varName = w.name.slice(0, -2);
      const entry = found.get(varName) ?? {};
      if (entry[kind] != null) throw new InputError(`AdamW.setWeights: weight '${w.name}' appears twice`);
      if (w.tensor.dtype !== 'float32') {
        throw new InputError(
          `AdamW.setWeights: weight '${w.name}' has dtype ${w.tensor.dtype}, expected float32`,
        );
      }
      entry[kind] = w;
      found.set(varName, entry);
    }
    const values: { varName: string; shape: number[]; m: Float32Array; v: Float32Array }[] = [];
    for (const [varName, { m, v }] of found) {
      if (m == null || v == null) {
        throw new InputError(
          `AdamW.setWeights: variable '${varName}' has '${m ? 'm' : 'v'}' but not '${m ? 'v' : 'm'}': both moments are needed`,
        );
      }
      if (!tf.util.arraysEqual(m.tensor.shape, v.tensor.shape)) {
        throw new ShapeError(
          `AdamW.setWeights: '${varName}/m' has shape [${m.tensor.shape}] but '${varName}/v' has [${v.tensor.shape}]`,
        );
      }
      const [mv, vv] = await Promise.all([m.tensor.data<'float32'>(), v.tensor.data<'float32'>()]);
      values.push({ varName, shape: m.tensor.shape, m: mv, v: vv });
    }
    // Only now that everything checked out: the iteration count, then the moments (copied into new variables,
    // created after the old ones are gone so that they get the plain names `<var>/m`, `<var>/v`).
    await this.extractIterations(weightValues);
    this.disposeMoments();
    for (const { varName, shape, m, v } of values) {
      const mName = `${varName}${suffixes.m}`;
      const vName = `${varName}${suffixes.v}`;
      this.moments.set(varName, {
        m: { name: mName, tensor: stateVariable(mName, shape, { values: m }) },
        v: { name: vName, tensor: stateVariable(vName, shape, { values: v }) },
      });
    }
  }

  override getConfig(): AdamWConfig {
    return {
      learningRate: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
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
    const options: AdamWOptions = {
      lr: pick('learningRate', 'learning_rate', 'lr'),
      beta1: pick('beta1', 'beta_1'),
      beta2: pick('beta2', 'beta_2'),
      eps: pick('epsilon', 'eps'),
      weightDecay: pick('weightDecay', 'weight_decay'),
    };
    return new (cls as unknown as new (o: AdamWOptions) => T)(options);
  }
}

tf.serialization.registerClass(AdamW);
