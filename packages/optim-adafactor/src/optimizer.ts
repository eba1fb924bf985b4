import { InputError, ShapeError, stateVariable } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import {
  type AdafactorHparams,
  type AdafactorOptions,
  checkExternalLr,
  resolveAdafactorHparams,
} from './hparams.ts';
import { type AdafactorStateVars, adafactorUpdate } from './kernel.ts';
import type { AdafactorImpl } from './plugin.ts';
import { type AdafactorStateKey, stateShapes } from './state.ts';

/** The serialisable configuration of `Adafactor` (what tfjs-layers writes as `optimizer_config.config`). */
export interface AdafactorConfig extends tf.serialization.ConfigDict {
  /** null with relativeStep (HF `lr=None`). */
  learningRate: number | null;
  relativeStep: boolean;
  warmupInit: boolean;
  scaleParameter: boolean;
  beta1: number | null;
  clipThreshold: number;
  decayRate: number;
  eps1: number;
  eps2: number;
  weightDecay: number;
}

/** `{name, tensor}` as tfjs optimizers exchange weights (tfjs-core does not export the type from its root). */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

const STATE_KEYS: readonly AdafactorStateKey[] = [
  'exp_avg_sq_row',
  'exp_avg_sq_col',
  'exp_avg_sq',
  'exp_avg',
];

interface VarState {
  /** HF's per-parameter `state["step"]`: updates applied so far. */
  step: number;
  vars: AdafactorStateVars;
}

/**
 * A drop-in `tf.train.Optimizer` running Adafactor (HF `transformers.optimization.Adafactor` semantics) through
 * the fused in-place `KstarAdafactor` kernel, for plain tfjs (`minimize`, `applyGradients`) and tfjs-layers
 * (`model.compile({optimizer: new Adafactor()})`, `fit`, `save({includeOptimizer: true})`).
 *
 * State is keyed by **variable name** (never by position), and each variable keeps its own step counter as HF
 * does (`state["step"]`): a variable first updated at global step k starts at its own step 1 (β̂2 = 0).
 * Checkpoints (`getWeights`) carry, per variable, `<var>/exp_avg_sq_row`, `<var>/exp_avg_sq_col` (or
 * `<var>/exp_avg_sq`), `<var>/exp_avg` with beta1, and `<var>/step` (int32 scalar), after the global `iter`.
 */
export class Adafactor extends tf.Optimizer {
  /** @nocollapse */
  static get className(): string {
    return 'Adafactor';
  }

  private hp: AdafactorHparams;
  private readonly impl: AdafactorImpl;
  /** State by variable name; insertion order is the order of `getWeights`. */
  private readonly states = new Map<string, VarState>();
  /** Tensors of the last `getWeights` that the optimizer created (iter, steps): owned here. */
  private exported: tf.Tensor[] = [];

  constructor(options: AdafactorOptions & { impl?: AdafactorImpl } = {}) {
    super();
    const { impl = 'auto', ...rest } = options ?? {};
    if (impl !== 'auto' && impl !== 'fallback') {
      throw new InputError(
        `Adafactor: impl = ${JSON.stringify(impl)} is invalid: it must be 'auto' or 'fallback'`,
      );
    }
    this.hp = resolveAdafactorHparams(rest, 'Adafactor');
    this.impl = impl;
  }

  /**
   * The external learning rate, or null with `relativeStep` (the step size is then computed from the step
   * count, HF `lr=None`). Settable between steps only without `relativeStep`; with it, assigning throws
   * `InputError` (a schedule would otherwise be silently ignored).
   */
  get learningRate(): number | null {
    return this.hp.lr;
  }
  set learningRate(value: number) {
    if (this.hp.relativeStep) {
      throw new InputError(
        `Adafactor: learningRate cannot be set with relativeStep = true (the step size is min(1e-2, 1/√t)${this.hp.scaleParameter ? '·max(eps2, RMS(p))' : ''}): construct it with {relativeStep: false, lr} to use a schedule`,
      );
    }
    this.hp = Object.freeze({ ...this.hp, lr: checkExternalLr(value, 'Adafactor') });
  }

  /** The hyper-parameters under K* names. */
  get hparams(): AdafactorHparams {
    return this.hp;
  }

  /** The state of one variable (live variables, do not dispose) and its step count, or undefined before its first update. */
  stateOf(variableName: string): (AdafactorStateVars & { step: number }) | undefined {
    const s = this.states.get(variableName);
    return s && { ...s.vars, step: s.step };
  }

  /** Names of the variables that have state. */
  stateNames(): string[] {
    return [...this.states.keys()];
  }

  /**
   * One Adafactor step for every variable with a gradient. Targets are looked up by name among the registered
   * variables; entries with a null gradient are skipped (their state and step count are untouched). Gradients are
   * not disposed.
   */
  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries: [string, tf.Tensor | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.entries(variableGradients);
    const registered = tf.engine().registeredVariables;
    const withMomentum = this.hp.beta1 != null;
    for (const [name, grad] of entries) {
      if (grad == null) continue;
      const param = registered[name];
      if (param == null) {
        throw new InputError(
          `Adafactor.applyGradients: no registered variable is named '${name}': gradients must be keyed by variable name`,
        );
      }
      let s = this.states.get(name);
      if (s == null) {
        const vars: AdafactorStateVars = {};
        for (const [key, shape] of Object.entries(stateShapes(param.shape, withMomentum)) as [
          AdafactorStateKey,
          number[],
        ][]) {
          vars[key] = stateVariable(`${name}/${key}`, shape);
        }
        s = { step: 0, vars };
        this.states.set(name, s);
      }
      // Throws ShapeError/InputError when restored state does not fit this variable.
      adafactorUpdate(param, grad, s.vars, this.hp, s.step + 1, { impl: this.impl });
      s.step += 1;
    }
    this.incrementIterations();
  }

  /** Disposes every state variable; the instance may keep training (state is recreated as zeros, steps from 0). */
  override dispose(): void {
    this.disposeStates();
    tf.dispose(this.exported);
    this.exported = [];
  }

  private disposeStates(): void {
    for (const s of this.states.values()) tf.dispose(Object.values(s.vars));
    this.states.clear();
  }

  /**
   * `[iter, then per variable: '<var>/exp_avg_sq_row', '<var>/exp_avg_sq_col' | '<var>/exp_avg_sq',
   * ['<var>/exp_avg'], '<var>/step']`. Every tensor stays owned by the optimizer: the state tensors are the live
   * variables (updated in place by the next step: read them before), and `iter` and the step scalars live until
   * the next `getWeights` or `dispose` (disposing them earlier is harmless).
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const iter = await this.saveIterations();
    tf.dispose(this.exported);
    this.exported = [iter.tensor];
    const out: NamedTensor[] = [{ name: iter.name, tensor: iter.tensor }];
    for (const [name, s] of this.states) {
      for (const key of STATE_KEYS) {
        const t = s.vars[key];
        if (t != null) out.push({ name: `${name}/${key}`, tensor: t });
      }
      const step = tf.scalar(s.step, 'int32');
      this.exported.push(step);
      out.push({ name: `${name}/step`, tensor: step });
    }
    return out;
  }

  /**
   * Replaces all state with `[iter, …]` as `getWeights` writes it, matched by name (any order). The values are
   * copied, so the caller may dispose its tensors afterwards. Malformed input throws and leaves the state as it was.
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    if (weightValues.length === 0 || weightValues[0]!.name !== 'iter') {
      throw new InputError(
        `Adafactor.setWeights: the first entry must be 'iter' (as getWeights writes it), got '${weightValues[0]?.name ?? 'nothing'}'`,
      );
    }
    const suffixes = [...STATE_KEYS, 'step'] as const;
    const found = new Map<string, Partial<Record<(typeof suffixes)[number], tf.Tensor>>>();
    for (const w of weightValues.slice(1)) {
      const key = suffixes.find((k) => w.name.endsWith(`/${k}`));
      if (key == null) {
        throw new InputError(
          `Adafactor.setWeights: weight '${w.name}' is not '<variable>/<${suffixes.join('|')}>'`,
        );
      }
      const varName = w.name.slice(0, -(key.length + 1));
      const entry = found.get(varName) ?? {};
      if (entry[key] != null) throw new InputError(`Adafactor.setWeights: weight '${w.name}' appears twice`);
      if (key !== 'step' && w.tensor.dtype !== 'float32') {
        throw new InputError(
          `Adafactor.setWeights: weight '${w.name}' has dtype ${w.tensor.dtype}, expected float32`,
        );
      }
      entry[key] = w.tensor;
      found.set(varName, entry);
    }
    const withMomentum = this.hp.beta1 != null;
    const restored: {
      varName: string;
      step: number;
      values: [AdafactorStateKey, number[], Float32Array][];
    }[] = [];
    for (const [varName, e] of found) {
      const where = `Adafactor.setWeights: variable '${varName}'`;
      const factored = e.exp_avg_sq_row != null || e.exp_avg_sq_col != null;
      if (factored && (e.exp_avg_sq_row == null || e.exp_avg_sq_col == null || e.exp_avg_sq != null)) {
        throw new InputError(`${where} needs both exp_avg_sq_row and exp_avg_sq_col (and no exp_avg_sq)`);
      }
      if (!factored && e.exp_avg_sq == null) {
        throw new InputError(`${where} has neither exp_avg_sq_row/exp_avg_sq_col nor exp_avg_sq`);
      }
      if (withMomentum !== (e.exp_avg != null)) {
        throw new InputError(
          `${where} ${withMomentum ? 'lacks exp_avg, needed with beta1' : 'has exp_avg but this optimizer has beta1 = null'}`,
        );
      }
      if (e.step == null || e.step.size !== 1) {
        throw new InputError(`${where} lacks its scalar '${varName}/step'`);
      }
      const step = (await e.step.data())[0]!;
      if (!(Number.isInteger(step) && step >= 0)) {
        throw new InputError(`${where}: step = ${step} is invalid: it must be an integer ≥ 0`);
      }
      // The parameter's shape implied by the state, then the state shapes it must have.
      let paramShape: number[];
      if (factored) {
        const r = e.exp_avg_sq_row!.shape;
        const c = e.exp_avg_sq_col!.shape;
        if (r.length < 1 || c.length !== r.length || !tf.util.arraysEqual(r.slice(0, -1), c.slice(0, -1))) {
          throw new ShapeError(
            `${where}: exp_avg_sq_row [${r}] and exp_avg_sq_col [${c}] do not belong to one parameter`,
          );
        }
        paramShape = [...r, c[c.length - 1]!];
      } else {
        paramShape = e.exp_avg_sq!.shape;
      }
      const values: [AdafactorStateKey, number[], Float32Array][] = [];
      for (const [key, shape] of Object.entries(stateShapes(paramShape, withMomentum)) as [
        AdafactorStateKey,
        number[],
      ][]) {
        const t = e[key]!;
        if (!tf.util.arraysEqual(t.shape, shape)) {
          throw new ShapeError(
            `${where}: ${key} has shape [${t.shape}], expected [${shape}] for a [${paramShape}] parameter`,
          );
        }
        values.push([key, shape, (await t.data()) as Float32Array]);
      }
      restored.push({ varName, step, values });
    }
    // Everything checked out: the iteration count, then the state (copied into new variables, created after the
    // old ones are gone so that they get the plain names `<var>/<key>`).
    await this.extractIterations(weightValues);
    this.disposeStates();
    for (const { varName, step, values } of restored) {
      const vars: AdafactorStateVars = {};
      for (const [key, shape, data] of values)
        vars[key] = stateVariable(`${varName}/${key}`, shape, { values: data });
      this.states.set(varName, { step, vars });
    }
  }

  override getConfig(): AdafactorConfig {
    const h = this.hp;
    return {
      learningRate: h.lr,
      relativeStep: h.relativeStep,
      warmupInit: h.warmupInit,
      scaleParameter: h.scaleParameter,
      beta1: h.beta1,
      clipThreshold: h.clipThreshold,
      decayRate: h.decayRate,
      eps1: h.eps1,
      eps2: h.eps2,
      weightDecay: h.weightDecay,
    };
  }

  /** @nocollapse Accepts `getConfig()` output (also with snake_case keys, as tfjs-layers may convert them). */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const pick = <V>(...keys: string[]): V | undefined => {
      for (const k of keys) if (k in config && config[k] !== undefined) return config[k] as V;
      return undefined;
    };
    const options: AdafactorOptions = {};
    const set = <K extends keyof AdafactorOptions>(key: K, value: AdafactorOptions[K] | undefined) => {
      if (value !== undefined) options[key] = value;
    };
    set('lr', pick('learningRate', 'learning_rate', 'lr'));
    set('relativeStep', pick('relativeStep', 'relative_step'));
    set('warmupInit', pick('warmupInit', 'warmup_init'));
    set('scaleParameter', pick('scaleParameter', 'scale_parameter'));
    set('beta1', pick('beta1', 'beta_1'));
    set('clipThreshold', pick('clipThreshold', 'clip_threshold'));
    set('decayRate', pick('decayRate', 'decay_rate'));
    set('eps1', pick('eps1'));
    set('eps2', pick('eps2'));
    set('weightDecay', pick('weightDecay', 'weight_decay'));
    return new (cls as unknown as new (o: AdafactorOptions) => T)(options);
  }
}

tf.serialization.registerClass(Adafactor);
