import * as tf from '@tensorflow/tfjs-core';
import type { MasterWeightsPlugin } from './contracts.ts';
import { uniqueBufferBytes } from './ledger.ts';

/**
 * How the engine reads and updates the trained parameters. Without a master-weights plugin: the model's float32
 * variables, exactly as before plugins existed (`read` returns every variable, `release` does nothing, `update` runs
 * the optimizer on the variable itself). With one: the plugin's storage; `read` materializes new float32 tensors for
 * the names asked (alive until `release`), `update` goes through a temporary float32 variable.
 */
export interface ParamAccess {
  /** True when `read` returns new tensors (full-graph mode must then differentiate w.r.t. them, not variables). */
  readonly materializes: boolean;
  read(names: readonly string[]): Record<string, tf.Tensor>;
  release(params: Record<string, tf.Tensor>): void;
  update(name: string, fn: (param: tf.Variable) => void): void;
  /** Persistent bytes of the parameters (unique buffers). */
  bytes(): number;
}

/**
 * The engine's access to `variables`; with `plugin`, the `trained` ones are adopted by it (their float32 buffers
 * are freed) and variables no stage reads stay as they are.
 */
export function paramAccess(
  variables: ReadonlyMap<string, tf.Variable>,
  trained: ReadonlyMap<string, tf.Variable>,
  plugin?: MasterWeightsPlugin,
): ParamAccess {
  if (!plugin) {
    return {
      materializes: false,
      read: () => Object.fromEntries(variables),
      release: () => {},
      update: (name, fn) => fn(variables.get(name)!),
      bytes: () => uniqueBufferBytes(variables.values()),
    };
  }
  plugin.adopt(trained);
  const untrained = [...variables].filter(([n]) => !trained.has(n)).map(([, v]) => v);
  return {
    materializes: true,
    read: (names) => plugin.materialize(names),
    release: (params) => tf.dispose(Object.values(params)),
    update: (name, fn) => plugin.update(name, fn),
    bytes: () => uniqueBufferBytes([...plugin.tensors(), ...untrained]),
  };
}

/**
 * Loss and gradients of `loss(params)` w.r.t. materialized parameters (full-graph mode with a master-weights plugin:
 * `tf.variableGrads` cannot see them). Gradients are keyed by the adopted variables' names, as `variableGrads` keys
 * them. The materialized tensors are released before returning.
 */
export function materializedGrads(
  access: ParamAccess,
  trained: ReadonlyMap<string, tf.Variable>,
  loss: (params: Record<string, tf.Tensor>) => tf.Scalar,
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const names = [...trained.keys()];
  const params = access.read(names);
  try {
    const f = (...ts: tf.Tensor[]) => loss(Object.fromEntries(names.map((n, k) => [n, ts[k]!])));
    const { value, grads } = tf.valueAndGrads(f)(names.map((n) => params[n]!));
    return {
      value: value as tf.Scalar,
      grads: Object.fromEntries(names.map((n, k) => [trained.get(n)!.name, grads[k]!])),
    };
  } finally {
    access.release(params);
  }
}
