import * as tf from '@tensorflow/tfjs-core';
import { InputError } from './errors.ts';

/**
 * A free variable name: `base` itself, else `base_1`, `base_2`… tfjs variable names are process-global, so a
 * second optimizer over the same parameter (or a restored one) cannot reuse `base`.
 */
export function uniqueVariableName(base: string): string {
  const taken = tf.engine().registeredVariables;
  if (taken[base] == null) return base;
  for (let k = 1; ; k++) {
    const name = `${base}_${k}`;
    if (taken[name] == null) return name;
  }
}

/**
 * A non-trainable optimizer-state variable named `base` (or the next free `base_k`) holding `make()`'s value.
 * Created inside a tidy so that its buffer has a single reference (refCount 1): in-place kernels may write it.
 */
export function stateVariableFrom(base: string, make: () => tf.Tensor): tf.Variable {
  const name = uniqueVariableName(base);
  return tf.tidy(() => {
    const init = make();
    return tf.variable(init, false, name, init.dtype);
  });
}

/** A state variable of `shape`: a copy of `values`, else filled with `fill` (default 0); float32 unless `dtype` says. */
export function stateVariable(
  base: string,
  shape: readonly number[],
  init: { values?: Float32Array | Int32Array; fill?: number; dtype?: 'float32' | 'int32' } = {},
): tf.Variable {
  const dtype = init.dtype ?? 'float32';
  return stateVariableFrom(base, () =>
    // `slice()`: the cpu backend keeps the array it is given, and an array read from another tensor may be that
    // tensor's live buffer; an in-place kernel must never write into memory someone else holds.
    init.values !== undefined
      ? tf.tensor(init.values.slice(), shape as number[], dtype)
      : tf.fill(shape as number[], init.fill ?? 0, dtype),
  );
}

/** Whether `t` is a tf.Variable (assignable and named), as the entries of an optimizer's state are. */
export function isVariable(t: unknown): t is tf.Variable {
  return (
    t != null &&
    typeof (t as tf.Variable).assign === 'function' &&
    typeof (t as tf.Variable).name === 'string'
  );
}

/**
 * The variables `keys` of one parameter's optimizer state (`optimizer`'s); an InputError names the missing ones and
 * says to create the state with `<optimizer>().init`.
 */
export function requireStateVariables<K extends string>(
  optimizer: string,
  param: { readonly name: string },
  state: Readonly<Record<string, unknown>>,
  keys: readonly K[],
): Record<K, tf.Variable> {
  const missing = keys.filter((k) => !isVariable(state[k]));
  if (missing.length > 0) {
    throw new InputError(
      `${optimizer}: the state of parameter '${param.name}' lacks ${missing.join(', ')} (keys: ${Object.keys(state).join(', ') || 'none'}): create it with ${optimizer}().init`,
    );
  }
  return state as Record<K, tf.Variable>;
}
