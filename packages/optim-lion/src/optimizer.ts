import { InputError, ShapeError, stateVariable } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { checkHparam, type LionHparams, type LionOptions, resolveLionHparams } from './hparams.ts';
import { lionUpdate } from './kernel.ts';
import { effectiveWeightDecay, type LionImpl } from './plugin.ts';

/** The serialisable configuration of `Lion` (what tfjs-layers writes as `optimizer_config.config`). */
export interface LionConfig extends tf.serialization.ConfigDict {
  learningRate: number;
  beta1: number;
  beta2: number;
  weightDecay: number;
  decoupledWeightDecay: boolean;
  /** lr₀, the learning rate given at construction (`decoupledWeightDecay` divides λ by it). */
  initialLearningRate: number;
}

/** `{name, tensor}` as tfjs optimizers exchange weights (tfjs-core does not export the type from its root). */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

const SUFFIX = '/m';

/**
 * A drop-in `tf.train.Optimizer` running Lion (lion_pytorch semantics) through the fused in-place `KstarLion`
 * kernel, for plain tfjs (`minimize`, `applyGradients`) and tfjs-layers (`model.compile({optimizer: new Lion()})`,
 * `fit`, `save({includeOptimizer: true})`).
 *
 * The momentum is keyed by **variable name** (never by position in the gradient list), so updating a different
 * subset or order of variables is safe; each variable is updated on its own and, where the kernel runs in place,
 * with no param-sized temporary. Lion has no step-dependent term: `iterations` only counts steps.
 */
export class Lion extends tf.Optimizer {
  /** @nocollapse */
  static get className(): string {
    return 'Lion';
  }

  private lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly weightDecay: number;
  readonly decoupledWeightDecay: boolean;
  /** lr₀: the learning rate given at construction. */
  readonly initialLearningRate: number;
  private readonly impl: LionImpl;
  /** Momenta by variable name; insertion order is the order of `getWeights`. */
  private readonly moments = new Map<string, NamedTensor & { tensor: tf.Variable }>();
  /** The `iter` scalar of the last `getWeights`, owned here (tfjs-layers' `save` never disposes it). */
  private iterTensor: tf.Tensor | null = null;

  constructor(options: LionOptions & { impl?: LionImpl } = {}) {
    super();
    const { impl = 'auto', ...rest } = options ?? {};
    if (impl !== 'auto' && impl !== 'fallback') {
      throw new InputError(
        `Lion: impl = ${JSON.stringify(impl)} is invalid: it must be 'auto' or 'fallback'`,
      );
    }
    const hp = resolveLionHparams(rest, 'Lion');
    this.lr = hp.lr;
    this.initialLearningRate = hp.lr;
    this.beta1 = hp.beta1;
    this.beta2 = hp.beta2;
    this.weightDecay = hp.weightDecay;
    this.decoupledWeightDecay = hp.decoupledWeightDecay;
    this.impl = impl;
  }

  /** The learning rate; settable between steps (schedules), validated like the constructor option. */
  get learningRate(): number {
    return this.lr;
  }
  set learningRate(value: number) {
    this.lr = checkHparam('lr', value, 'Lion');
  }

  /** The hyper-parameters under K* names. */
  get hparams(): LionHparams {
    return {
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      weightDecay: this.weightDecay,
      decoupledWeightDecay: this.decoupledWeightDecay,
    };
  }

  /** The momentum of one variable (a live state variable, do not dispose), or undefined before its first update. */
  stateOf(variableName: string): { m: tf.Variable } | undefined {
    const s = this.moments.get(variableName);
    return s && { m: s.tensor };
  }

  /** Names of the variables that have state. */
  stateNames(): string[] {
    return [...this.moments.keys()];
  }

  /**
   * One Lion step for every variable with a gradient. Targets are looked up by name among the registered
   * variables; entries with a null gradient are skipped (their state is untouched). Gradients are not disposed.
   */
  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries: [string, tf.Tensor | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.entries(variableGradients);
    const hp = {
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      weightDecay: effectiveWeightDecay(this.hparams, this.initialLearningRate),
    };
    const registered = tf.engine().registeredVariables;
    for (const [name, grad] of entries) {
      if (grad == null) continue;
      const param = registered[name];
      if (param == null) {
        throw new InputError(
          `Lion.applyGradients: no registered variable is named '${name}': gradients must be keyed by variable name`,
        );
      }
      let s = this.moments.get(name);
      if (s == null) {
        s = { name: `${name}${SUFFIX}`, tensor: stateVariable(`${name}${SUFFIX}`, param.shape) };
        this.moments.set(name, s);
      } else if (!tf.util.arraysEqual(s.tensor.shape, param.shape)) {
        throw new ShapeError(
          `Lion: the state of '${name}' has shape [${s.tensor.shape}] but the variable has [${param.shape}]: restore state saved for this model`,
        );
      }
      lionUpdate(param, grad, s.tensor, hp, { impl: this.impl });
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
    for (const s of this.moments.values()) s.tensor.dispose();
    this.moments.clear();
  }

  /**
   * `[iter, …'<var>/m']` (int32 scalar `iter` first, as tfjs optimizers write it). Every tensor stays owned by
   * the optimizer: the momenta are the live state variables, and `iter` lives until the next `getWeights` or
   * `dispose` (disposing it earlier is harmless). Read them before the next step: the kernel updates them in place.
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const iter = await this.saveIterations();
    this.iterTensor?.dispose();
    this.iterTensor = iter.tensor;
    return [iter, ...[...this.moments.values()].map((s) => ({ name: s.name, tensor: s.tensor }))];
  }

  /**
   * Replaces all state with `[iter, …]` as `getWeights` writes it, matched by name (`<var>/m`, any order). The
   * values are copied, so the caller may dispose its tensors afterwards. Nothing changes if any entry is invalid.
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    if (weightValues.length === 0 || weightValues[0]!.name !== 'iter') {
      throw new InputError(
        `Lion.setWeights: the first entry must be 'iter' (as getWeights writes it), got '${weightValues[0]?.name ?? 'nothing'}'`,
      );
    }
    const seen = new Set<string>();
    for (const w of weightValues.slice(1)) {
      if (!w.name.endsWith(SUFFIX)) {
        throw new InputError(`Lion.setWeights: weight '${w.name}' is not '<variable>/m'`);
      }
      if (seen.has(w.name)) throw new InputError(`Lion.setWeights: weight '${w.name}' appears twice`);
      seen.add(w.name);
      if (w.tensor.dtype !== 'float32') {
        throw new InputError(
          `Lion.setWeights: weight '${w.name}' has dtype ${w.tensor.dtype}, expected float32`,
        );
      }
      const param = tf.engine().registeredVariables[w.name.slice(0, -SUFFIX.length)];
      if (param != null && !tf.util.arraysEqual(param.shape, w.tensor.shape)) {
        throw new ShapeError(
          `Lion.setWeights: '${w.name}' has shape [${w.tensor.shape}] but variable '${param.name}' has [${param.shape}]`,
        );
      }
    }
    const values = await Promise.all(
      weightValues.slice(1).map(async (w) => ({
        varName: w.name.slice(0, -SUFFIX.length),
        shape: w.tensor.shape,
        m: (await w.tensor.data()) as Float32Array,
      })),
    );
    // Only now that everything checked out: the iteration count, then the momenta (copied into new variables,
    // created after the old ones are gone so that they get the plain names `<var>/m`).
    await this.extractIterations(weightValues);
    this.disposeMoments();
    for (const { varName, shape, m } of values) {
      const name = `${varName}${SUFFIX}`;
      this.moments.set(varName, { name, tensor: stateVariable(name, shape, { values: m }) });
    }
  }

  override getConfig(): LionConfig {
    return {
      learningRate: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      weightDecay: this.weightDecay,
      decoupledWeightDecay: this.decoupledWeightDecay,
      initialLearningRate: this.initialLearningRate,
    };
  }

  /**
   * @nocollapse Accepts `getConfig()` output (also with snake_case keys, as tfjs-layers may convert them). A
   * scheduled `learningRate` different from `initialLearningRate` is restored as such (lr₀ kept for decoupled decay).
   */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const pick = (...keys: string[]) => {
      for (const k of keys) if (config[k] != null) return config[k];
      return undefined;
    };
    const lr = pick('learningRate', 'learning_rate', 'lr') as number | undefined;
    const lr0 = pick('initialLearningRate', 'initial_learning_rate') as number | undefined;
    const options: LionOptions = {
      lr: lr0 ?? lr,
      beta1: pick('beta1', 'beta_1') as number | undefined,
      beta2: pick('beta2', 'beta_2') as number | undefined,
      weightDecay: pick('weightDecay', 'weight_decay') as number | undefined,
      decoupledWeightDecay: pick('decoupledWeightDecay', 'decoupled_weight_decay') as boolean | undefined,
    };
    const opt = new (cls as unknown as new (o: LionOptions) => T)(options);
    if (lr !== undefined && lr0 !== undefined) (opt as unknown as Lion).learningRate = lr;
    return opt;
  }
}

tf.serialization.registerClass(Lion);
