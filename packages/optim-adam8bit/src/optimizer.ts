import { InputError, ShapeError, stateVariable } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import {
  type Adam8bitHparams,
  type Adam8bitOptions,
  checkHparam,
  resolveAdam8bitHparams,
} from './hparams.ts';
import { type Adam8bitImpl, stepParam } from './plugin.ts';
import { createState, isQuantized, numel } from './state.ts';

export interface Adam8bitConfig extends tf.serialization.ConfigDict {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  blockSize: number;
  minQuantizedSize: number;
}

export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

/** State entries per variable, in `getWeights` order; saved as `<var>/<key>`. */
const KEYS_8BIT = ['m_codes', 'm_absmax', 'v_codes', 'v_absmax'] as const;
const KEYS_FP32 = ['m', 'v'] as const;
const TO_STATE: Record<string, string> = {
  m_codes: 'c1',
  m_absmax: 'a1',
  v_codes: 'c2',
  v_absmax: 'a2',
  m: 'm',
  v: 'v',
};

/**
 * A drop-in `tf.train.Optimizer` running 8-bit Adam through the fused `KstarAdam8bit` kernel (plain tfjs `minimize`
 * / `applyGradients`, tfjs-layers `compile`/`fit`/`save({includeOptimizer: true})`). State is keyed by variable
 * name. Variables are not told apart by role here: use `float32Embeddings` with the plugin. `getWeights` carries the
 * int32 codes and float32 absmax verbatim, so save → load → step is bit-identical to an uninterrupted step.
 */
export class Adam8bit extends tf.Optimizer {
  /** @nocollapse */
  static get className(): string {
    return 'Adam8bit';
  }

  private hp: Adam8bitHparams;
  private readonly impl: Adam8bitImpl;
  private readonly states = new Map<string, Record<string, tf.Variable>>();
  private iterTensor: tf.Tensor | null = null;

  constructor(options: Adam8bitOptions & { impl?: Adam8bitImpl } = {}) {
    super();
    const { impl = 'auto', ...rest } = options ?? {};
    if (impl !== 'auto' && impl !== 'fallback') {
      throw new InputError(
        `Adam8bit: impl = ${JSON.stringify(impl)} is invalid: it must be 'auto' or 'fallback'`,
      );
    }
    this.hp = resolveAdam8bitHparams(rest, 'Adam8bit');
    this.impl = impl;
  }

  get learningRate(): number {
    return this.hp.lr;
  }
  set learningRate(value: number) {
    this.hp = Object.freeze({ ...this.hp, lr: checkHparam('lr', value, 'Adam8bit') });
  }

  get hparams(): Adam8bitHparams {
    return this.hp;
  }

  /** The live state variables of one variable (do not dispose), or undefined before its first update. */
  stateOf(variableName: string): Readonly<Record<string, tf.Variable>> | undefined {
    return this.states.get(variableName);
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries: [string, tf.Tensor | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.entries(variableGradients);
    const step = this.iterations + 1;
    const registered = tf.engine().registeredVariables;
    for (const [name, grad] of entries) {
      if (grad == null) continue;
      const param = registered[name];
      if (param == null) {
        throw new InputError(
          `Adam8bit.applyGradients: no registered variable is named '${name}': gradients must be keyed by variable name`,
        );
      }
      let s = this.states.get(name);
      if (s == null) {
        s = createState(name, param.shape, isQuantized(param.size, undefined, this.hp), this.hp.blockSize);
        this.states.set(name, s);
      }
      stepParam(param, grad, s, step, this.hp, this.impl, 'Adam8bit');
    }
    this.incrementIterations();
  }

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
   * `[iter, …]` then per variable `<var>/m_codes` (int32), `<var>/m_absmax`, `<var>/v_codes`, `<var>/v_absmax`
   * (8-bit) or `<var>/m`, `<var>/v` (float32). The tensors are the live state (owned here): read them before the next step.
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const iter = await this.saveIterations();
    this.iterTensor?.dispose();
    this.iterTensor = iter.tensor;
    const out: NamedTensor[] = [iter];
    for (const [name, s] of this.states) {
      const keys = 'c1' in s ? KEYS_8BIT : KEYS_FP32;
      for (const k of keys) out.push({ name: `${name}/${k}`, tensor: s[TO_STATE[k]!]! });
    }
    return out;
  }

  /** Replaces all state with `getWeights` output (matched by name; values copied). Nothing changes on invalid input. */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    if (weightValues.length === 0 || weightValues[0]!.name !== 'iter') {
      throw new InputError(
        `Adam8bit.setWeights: the first entry must be 'iter' (as getWeights writes it), got '${weightValues[0]?.name ?? 'nothing'}'`,
      );
    }
    const byVar = new Map<string, Map<string, tf.Tensor>>();
    for (const w of weightValues.slice(1)) {
      const slash = w.name.lastIndexOf('/');
      const key = w.name.slice(slash + 1);
      if (slash < 0 || !(key in TO_STATE)) {
        throw new InputError(
          `Adam8bit.setWeights: weight '${w.name}' is not '<variable>/<m_codes|m_absmax|v_codes|v_absmax|m|v>'`,
        );
      }
      const v = w.name.slice(0, slash);
      if (!byVar.has(v)) byVar.set(v, new Map());
      byVar.get(v)!.set(key, w.tensor);
    }
    const plan: {
      name: string;
      entries: {
        key: string;
        shape: number[];
        dtype: 'int32' | 'float32';
        values: Float32Array | Int32Array;
      }[];
    }[] = [];
    for (const [name, m] of byVar) {
      const keys = m.has('m_codes') ? KEYS_8BIT : KEYS_FP32;
      if (m.size !== keys.length || !keys.every((k) => m.has(k))) {
        throw new InputError(
          `Adam8bit.setWeights: variable '${name}' has entries [${[...m.keys()]}], expected [${keys.join(', ')}]`,
        );
      }
      const n = keys === KEYS_8BIT ? null : numel(m.get('m')!.shape);
      const entries = [];
      for (const k of keys) {
        const t = m.get(k)!;
        const dtype: 'int32' | 'float32' = k.endsWith('codes') ? 'int32' : 'float32';
        if (t.dtype !== dtype) {
          throw new ShapeError(`Adam8bit.setWeights: '${name}/${k}' has dtype ${t.dtype}, expected ${dtype}`);
        }
        if (n != null && t.size !== n) {
          throw new ShapeError(`Adam8bit.setWeights: '${name}/${k}' has ${t.size} elements, expected ${n}`);
        }
        entries.push({
          key: k,
          shape: t.shape,
          dtype,
          values: (await t.data()) as Float32Array | Int32Array,
        });
      }
      plan.push({ name, entries });
    }
    await this.extractIterations(weightValues);
    this.disposeStates();
    for (const { name, entries } of plan) {
      const s: Record<string, tf.Variable> = {};
      for (const e of entries) {
        s[TO_STATE[e.key]!] = stateVariable(`${name}/${e.key}`, e.shape, {
          dtype: e.dtype,
          values: e.values,
        });
      }
      this.states.set(name, s);
    }
  }

  override getConfig(): Adam8bitConfig {
    return {
      learningRate: this.hp.lr,
      beta1: this.hp.beta1,
      beta2: this.hp.beta2,
      epsilon: this.hp.eps,
      weightDecay: this.hp.weightDecay,
      blockSize: this.hp.blockSize,
      minQuantizedSize: this.hp.minQuantizedSize,
    };
  }

  /** @nocollapse */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const pick = (...keys: string[]) => {
      for (const k of keys) if (config[k] != null) return config[k] as number;
      return undefined;
    };
    const options: Adam8bitOptions = {
      lr: pick('learningRate', 'learning_rate', 'lr'),
      beta1: pick('beta1', 'beta_1'),
      beta2: pick('beta2', 'beta_2'),
      eps: pick('epsilon', 'eps'),
      weightDecay: pick('weightDecay', 'weight_decay'),
      blockSize: pick('blockSize', 'block_size'),
      minQuantizedSize: pick('minQuantizedSize', 'min_quantized_size', 'min_8bit_size'),
    };
    for (const k of Object.keys(options) as (keyof Adam8bitOptions)[])
      if (options[k] === undefined) delete options[k];
    return new (cls as unknown as new (o: Adam8bitOptions) => T)(options);
  }
}

tf.serialization.registerClass(Adam8bit);
