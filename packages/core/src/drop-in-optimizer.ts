import * as tf from '@tensorflow/tfjs-core';
import type { OptimizerPlugin, OptimizerState, ParamInfo } from './contracts.ts';
import { InputError } from './errors.ts';
import { stateVariable } from './state-variable.ts';

/** `{name, tensor}` as tfjs optimizers exchange weights (tfjs-core does not export the type from its root). */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

/** An optimizer plugin a drop-in can serialise: its hyper-parameters are its constructor options. */
export interface DropInPlugin extends OptimizerPlugin {
  /** The resolved hyper-parameters under K* names (what `getConfig` writes). */
  readonly hparams: object;
  /** lr₀, when the plugin keeps the learning rate it was created with (Lion's decoupled decay divides by it). */
  readonly initialLearningRate?: number;
}

/** How a drop-in counts steps and describes variables to its plugin. */
export interface DropInOptions {
  /**
   * `'global'` (default): every update of a step gets `iterations + 1` (tf.train.adam). `'per-variable'`: each
   * variable counts its own updates (HF Adafactor's `state["step"]`), saved as the int32 scalar `<variable>/step`.
   */
  readonly stepCount?: 'global' | 'per-variable';
  /** The role a variable's state is created for; default by rank (2: matrix, 1: vector, else other). */
  readonly roleOf?: (variable: tf.Variable) => ParamInfo['role'];
}

interface VariableState {
  /** The variable name the state is saved under: the one it was created or restored for. */
  savedName: string;
  state: OptimizerState;
  steps: number;
}

const STEP_KEY = 'step';
/** Config keys other libraries (and older K* versions) wrote for K* option names. */
const CONFIG_ALIASES: Readonly<Record<string, string>> = { learningRate: 'lr', epsilon: 'eps' };

const defaultRole = (v: tf.Variable): ParamInfo['role'] =>
  v.rank === 2 ? 'matrix' : v.rank === 1 ? 'vector' : 'other';

const camelCase = (key: string) => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * A drop-in `tf.Optimizer` over any `OptimizerPlugin`, for plain tfjs (`minimize`, `applyGradients`) and
 * tfjs-layers (`compile`, `fit`, `save({includeOptimizer: true})`, `loadLayersModel`). Each optimizer package
 * subclasses it with its class name and registers the subclass (`tf.serialization.registerClass`).
 *
 * State is keyed by variable name and created by `plugin.init` on a variable's first gradient; `getWeights` writes
 * `[iter, …<variable>/<state key>]` (variables in first-update order, keys in the state's order) with the tensors as
 * stored (8-bit codes stay codes), so save → load → step is bit-identical. After `setWeights`, the first step binds
 * restored state whose variable is not among its gradients by position, as tfjs's own optimizers do: a model loaded
 * in the same process gets renamed variables (`…_1`) but the same order.
 */
export class DropInOptimizer<P extends DropInPlugin = DropInPlugin> extends tf.Optimizer {
  readonly plugin: P;
  private readonly stepCount: 'global' | 'per-variable';
  private readonly roleOf: (variable: tf.Variable) => ParamInfo['role'];
  /** State by current variable name; insertion order is the order of `getWeights`. */
  private states = new Map<string, VariableState>();
  /** Saved variable names in restored order, until the first step after `setWeights` has bound them. */
  private restoredOrder: string[] | null = null;
  /** Tensors `getWeights` created (iter, steps), owned here until the next `getWeights` or `dispose`. */
  private exported: tf.Tensor[] = [];

  constructor(plugin: P, options: DropInOptions = {}) {
    super();
    this.plugin = plugin;
    this.stepCount = options.stepCount ?? 'global';
    this.roleOf = options.roleOf ?? defaultRole;
  }

  private get label(): string {
    return this.getClassName();
  }

  /** The resolved hyper-parameters under K* names. */
  get hparams(): P['hparams'] {
    return this.plugin.hparams;
  }

  /** The learning rate of the next steps, settable between steps (schedules) where the plugin has one. */
  get learningRate(): number | null {
    return this.plugin.learningRate ?? null;
  }
  set learningRate(value: number) {
    if (!('learningRate' in this.plugin)) {
      throw new InputError(
        `${this.label}: learningRate cannot be set: these hyper-parameters compute the step size themselves (${JSON.stringify(this.plugin.hparams)}); construct it with an explicit lr to use a schedule`,
      );
    }
    this.plugin.learningRate = value;
  }

  /** The live state of one variable (do not dispose), or undefined before its first update. */
  stateOf(variableName: string): Readonly<OptimizerState> | undefined {
    return this.states.get(variableName)?.state;
  }

  /** Updates applied to one variable so far (its own step count). */
  stepsOf(variableName: string): number {
    return this.states.get(variableName)?.steps ?? 0;
  }

  /** Names of the variables that have state, in `getWeights` order. */
  stateNames(): string[] {
    return [...this.states.keys()];
  }

  /**
   * One step for every variable with a gradient (null gradients are skipped, their state untouched). Targets are
   * looked up by name among the registered variables. Gradients are not disposed.
   */
  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries: [string, tf.Tensor | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.entries(variableGradients);
    this.bindRestoredByPosition(entries.map(([name]) => name));
    const registered = tf.engine().registeredVariables;
    for (const [name, grad] of entries) {
      if (grad == null) continue;
      const param = registered[name];
      if (param == null) {
        throw new InputError(
          `${this.label}.applyGradients: no registered variable is named '${name}': gradients must be keyed by variable name`,
        );
      }
      let s = this.states.get(name);
      if (s == null) {
        const state = this.plugin.init({ name, shape: param.shape, role: this.roleOf(param) });
        s = { savedName: name, state, steps: 0 };
        this.states.set(name, s);
      }
      const step = this.stepCount === 'global' ? this.iterations + 1 : s.steps + 1;
      this.plugin.update(param, grad, s.state, step);
      s.steps++;
    }
    this.incrementIterations();
  }

  /** Restored state whose saved variable gets no gradient now goes to the variable at its position. */
  private bindRestoredByPosition(names: string[]): void {
    const order = this.restoredOrder;
    if (order == null) return;
    this.restoredOrder = null;
    const inStep = new Set(names);
    const renamed = new Map<string, string>(); // saved name → current name
    names.forEach((name, i) => {
      const saved = order[i];
      if (this.states.has(name) || saved == null || inStep.has(saved) || !this.states.has(saved)) return;
      renamed.set(saved, name);
    });
    if (renamed.size === 0) return;
    this.states = new Map([...this.states].map(([name, s]) => [renamed.get(name) ?? name, s]));
  }

  /** Disposes every state tensor; the instance may keep training (state is created again). */
  override dispose(): void {
    this.disposeStates();
    tf.dispose(this.exported);
    this.exported = [];
  }

  private disposeStates(): void {
    for (const s of this.states.values()) tf.dispose(Object.values(s.state));
    this.states.clear();
    this.restoredOrder = null;
  }

  /**
   * `[iter, …<variable>/<key>]` (int32 scalar `iter` first, as tfjs optimizers write it; per-variable step counts
   * as `<variable>/step`). The state tensors are the live ones: read them before the next step (kernels update in
   * place). Tensors created here stay owned by the optimizer.
   */
  override async getWeights(): Promise<NamedTensor[]> {
    tf.dispose(this.exported);
    const iter = await this.saveIterations();
    this.exported = [iter.tensor];
    const out: NamedTensor[] = [iter];
    for (const s of this.states.values()) {
      for (const [key, tensor] of Object.entries(s.state))
        out.push({ name: `${s.savedName}/${key}`, tensor });
      if (this.stepCount === 'per-variable') {
        const steps = tf.scalar(s.steps, 'int32');
        this.exported.push(steps);
        out.push({ name: `${s.savedName}/${STEP_KEY}`, tensor: steps });
      }
    }
    return out;
  }

  /**
   * Replaces all state with `[iter, …]` as `getWeights` writes it (values copied: the caller may dispose its
   * tensors). Nothing changes if any entry is malformed.
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const where = `${this.label}.setWeights`;
    if (weightValues.length === 0 || weightValues[0]!.name !== 'iter') {
      throw new InputError(
        `${where}: the first entry must be 'iter' (as getWeights writes it), got '${weightValues[0]?.name ?? 'nothing'}'`,
      );
    }
    const byVariable = new Map<string, Map<string, tf.Tensor>>();
    for (const w of weightValues.slice(1)) {
      const slash = w.name.lastIndexOf('/');
      if (slash <= 0 || slash === w.name.length - 1) {
        throw new InputError(`${where}: weight '${w.name}' is not '<variable>/<state key>'`);
      }
      if (w.tensor.dtype !== 'float32' && w.tensor.dtype !== 'int32') {
        throw new InputError(
          `${where}: weight '${w.name}' has dtype ${w.tensor.dtype}, expected float32 or int32`,
        );
      }
      const variable = w.name.slice(0, slash);
      const key = w.name.slice(slash + 1);
      const entries = byVariable.get(variable) ?? new Map<string, tf.Tensor>();
      if (entries.has(key)) throw new InputError(`${where}: weight '${w.name}' appears twice`);
      entries.set(key, w.tensor);
      byVariable.set(variable, entries);
    }
    const restored: { variable: string; steps: number; entries: [string, tf.Tensor, tf.TypedArray][] }[] = [];
    for (const [variable, entries] of byVariable) {
      const stepTensor = entries.get(STEP_KEY);
      if (this.stepCount === 'per-variable' && (stepTensor == null || stepTensor.size !== 1)) {
        throw new InputError(
          `${where}: variable '${variable}' has no scalar '${variable}/${STEP_KEY}' (its step count)`,
        );
      }
      entries.delete(STEP_KEY);
      const steps = stepTensor == null ? 0 : (await stepTensor.data())[0]!;
      const values: [string, tf.Tensor, tf.TypedArray][] = [];
      for (const [key, t] of entries) values.push([key, t, (await t.data()) as tf.TypedArray]);
      restored.push({ variable, steps, entries: values });
    }
    // Only now that everything checked out: the iteration count, then the state (copied into new variables,
    // created after the old ones are gone so that they get the plain names `<variable>/<key>`).
    await this.extractIterations(weightValues);
    this.disposeStates();
    for (const { variable, steps, entries } of restored) {
      const state: OptimizerState = {};
      for (const [key, t, values] of entries) {
        state[key] = stateVariable(`${variable}/${key}`, t.shape, {
          values: values as Float32Array | Int32Array,
          dtype: t.dtype as 'float32' | 'int32',
        });
      }
      this.states.set(variable, { savedName: variable, state, steps });
    }
    this.restoredOrder = restored.map((r) => r.variable);
  }

  /** The hyper-parameters under K* names (plus `initialLearningRate` where the plugin keeps lr₀). */
  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = {};
    for (const [key, value] of Object.entries(this.plugin.hparams)) {
      if (value === null || ['number', 'string', 'boolean'].includes(typeof value)) {
        config[key] = value as tf.serialization.ConfigDictValue;
      }
    }
    if (this.plugin.initialLearningRate !== undefined) {
      config.initialLearningRate = this.plugin.initialLearningRate;
    }
    return config;
  }

  /**
   * @nocollapse `getConfig()` output back into an optimizer (snake_case keys too, as tfjs-layers may write them).
   * A scheduled learning rate different from `initialLearningRate` is restored as such.
   */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const options: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(config)) {
      const name = camelCase(key);
      if (name === 'customObjects') continue; // added by tfjs-layers' deserialize, not an option
      options[CONFIG_ALIASES[name] ?? name] = value;
    }
    const lr0 = options.initialLearningRate as number | undefined;
    const lr = options.lr as number | undefined;
    delete options.initialLearningRate;
    if (lr0 !== undefined) options.lr = lr0;
    const optimizer = new cls(options);
    if (lr0 !== undefined && lr != null && lr !== lr0 && optimizer instanceof DropInOptimizer) {
      optimizer.learningRate = lr;
    }
    return optimizer;
  }
}

/**
 * The class a drop-in optimizer package exports: constructed with its plugin factory's arguments, registered under
 * `className`, with `DropInOptimizer`'s static `fromConfig`.
 */
export interface DropInOptimizerClass<P extends DropInPlugin, A extends unknown[]> {
  new (...args: A): DropInOptimizer<P>;
  readonly className: string;
  fromConfig: typeof DropInOptimizer.fromConfig;
}

/**
 * A drop-in optimizer class over one plugin factory: `new Cls(options)` runs `createPlugin(options)`. The class is
 * named `className` and registered under it (`tf.serialization.registerClass`) so that saved models load with it.
 */
export function dropInOptimizerClass<P extends DropInPlugin, A extends unknown[]>(
  className: string,
  createPlugin: (...args: A) => P,
  options: DropInOptions = {},
): DropInOptimizerClass<P, A> {
  const cls = class extends DropInOptimizer<P> {
    /** @nocollapse */
    static get className(): string {
      return className;
    }

    constructor(...args: A) {
      super(createPlugin(...args), options);
    }
  };
  Object.defineProperty(cls, 'name', { value: className });
  tf.serialization.registerClass(cls);
  return cls;
}
