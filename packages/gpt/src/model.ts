import type { Batch, ParamInfo, Stage, StagedModel } from '@kstar/core';
import { InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { type ActivationBytesOptions, predictActivationBytes } from './activation-bytes.ts';
import { type GPTConfig, validateConfig } from './config.ts';
import { type ParamSpec, paramSeed, paramSpecs } from './params.ts';
import { block, checkTokens, embed, headLogits, makeStages } from './stages.ts';

export interface CreateGPTOptions {
  /** Seed of the weight initialisation: the same seed gives the same weights. Default 0. */
  readonly seed?: number;
}

/** A GPT as K* stages plus helpers for generation and evaluation. */
export interface GPTModel extends StagedModel {
  readonly config: GPTConfig;
  /** Number of scalar parameters (tied head counted once). */
  readonly paramCount: number;
  /**
   * Logits float32 [B, T, V] for int32 tokens [B, T] (no loss), from the model's variables or from `params` (e.g.
   * materialized master weights). The caller disposes the result.
   */
  forwardLogits(inputs: tf.Tensor, params?: Record<string, tf.Tensor>): tf.Tensor;
  /** Scalar mean cross-entropy: all stages composed, reading the model's variables. */
  loss(batch: Batch): tf.Scalar;
  /** The variables as the `params` record a stage reads. */
  paramRecord(): Record<string, tf.Tensor>;
  /** Predicted peak bytes of activations and temporaries of one training step (see `activation-bytes.ts`). */
  predictActivationBytes(opts: ActivationBytesOptions): number;
  /** Dispose every variable. */
  dispose(): void;
}

let modelCounter = 0;

/** Create a GPT with GPT-2 initialisation from a seed. Throws `InputError` for a bad config. */
export function createGPT(config: GPTConfig, options: CreateGPTOptions = {}): GPTModel {
  validateConfig(config);
  const seed = options.seed ?? 0;
  if (!Number.isFinite(seed)) {
    throw new InputError(
      `GPT seed ${String(seed)} is not a finite number: pass an integer seed`,
      'E_GPT_CONFIG',
    );
  }
  return new GPT({ ...config }, seed);
}

class GPT implements GPTModel {
  readonly config: GPTConfig;
  readonly stages: readonly Stage[];
  readonly variables: ReadonlyMap<string, tf.Variable>;
  readonly paramCount: number;
  private readonly specs: Map<string, ParamSpec>;

  constructor(config: GPTConfig, seed: number) {
    this.config = config;
    this.stages = makeStages(config);
    const id = modelCounter++;
    const specs = paramSpecs(config);
    this.specs = new Map(specs.map((s) => [s.name, s]));
    const vars = new Map<string, tf.Variable>();
    specs.forEach((spec, index) => {
      // Inside tidy: the initial tensor dies, the variable's buffer has refCount 1.
      const v = tf.tidy(() => {
        const shape = [...spec.shape];
        const init =
          spec.init.kind === 'normal'
            ? tf.randomNormal(shape, 0, spec.init.std, 'float32', paramSeed(seed, index))
            : spec.init.kind === 'ones'
              ? tf.ones(shape)
              : tf.zeros(shape);
        return tf.variable(init, true, `gpt${id}/${spec.name}`);
      });
      vars.set(spec.name, v);
    });
    this.variables = vars;
    let n = 0;
    for (const v of vars.values()) n += v.size;
    this.paramCount = n;
  }

  paramInfo(name: string): ParamInfo {
    const spec = this.specs.get(name);
    if (!spec) {
      throw new InputError(
        `GPT has no parameter '${name}': names are ${[...this.specs.keys()].slice(0, 4).join(', ')}, … (see model.variables)`,
      );
    }
    return { name, shape: spec.shape, role: spec.role };
  }

  paramRecord(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.variables);
  }

  forwardLogits(inputs: tf.Tensor, given?: Record<string, tf.Tensor>): tf.Tensor {
    checkTokens(inputs, this.config);
    const [B, T] = inputs.shape as [number, number];
    const params = given ?? this.paramRecord();
    return tf.tidy(() => {
      let x = embed(this.config, inputs, params); // [B, T, D]
      for (let i = 0; i < this.config.nLayer; i++) x = block(this.config, i, x, params);
      return tf.reshape(headLogits(x, params), [B, T, this.config.vocabSize]); // [B, T, V]
    });
  }

  loss(batch: Batch): tf.Scalar {
    const params = this.paramRecord();
    return tf.tidy(() => {
      let x: tf.Tensor = batch.inputs;
      for (const stage of this.stages) x = stage.forward(x, params, batch);
      return x as tf.Scalar;
    });
  }

  predictActivationBytes(opts: ActivationBytesOptions): number {
    return predictActivationBytes(this.config, opts);
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
  }
}
