import type * as tf from '@tensorflow/tfjs-core';
import type { ModelOps, ParamInfo } from './contracts.ts';

/** One training batch of token windows. */
export interface Batch {
  /** int32 [B, T]: input token ids. */
  readonly inputs: tf.Tensor;
  /** int32 [B, T]: next-token targets. */
  readonly targets: tf.Tensor;
}

/**
 * One pure stage of a model: `y = forward(x, params, batch)`.
 * The first stage receives `batch.inputs` as `x`; every other stage receives the previous stage's output;
 * the last stage returns the scalar mean loss. A stage never captures variables: it reads its parameters
 * from `params` (so the engine can differentiate with respect to them explicitly).
 */
export interface Stage {
  readonly name: string;
  /** Names of the parameters this stage reads. A parameter may be read by several stages (tied weights). */
  readonly params: readonly string[];
  forward(x: tf.Tensor, params: Readonly<Record<string, tf.Tensor>>, batch: Batch, ops?: ModelOps): tf.Tensor;
}

/** A model the engine can train: stages in order plus the variables they read. */
export interface StagedModel {
  readonly stages: readonly Stage[];
  readonly variables: ReadonlyMap<string, tf.Variable>;
  paramInfo(name: string): ParamInfo;
}

/** Total number of scalar parameters of a model. */
export function countParams(model: StagedModel): number {
  let n = 0;
  for (const v of model.variables.values()) n += v.size;
  return n;
}
