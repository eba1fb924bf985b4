import * as tf from '@tensorflow/tfjs-core';

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
 * A non-trainable float32 state variable named `base` (or the next free `base_k`), filled with zeros or with a
 * copy of `values`. Created inside a tidy so that its buffer has a single reference (refCount 1): the in-place
 * Lion kernel may then write it directly.
 */
export function stateVariable(base: string, shape: readonly number[], values?: Float32Array): tf.Variable {
  const name = uniqueVariableName(base);
  return tf.tidy(() => {
    // `slice()`: the cpu backend keeps the array it is given, and an array read from another tensor may be that
    // tensor's live buffer; the in-place kernel must never write into memory someone else holds.
    const init =
      values === undefined
        ? tf.zeros(shape as number[], 'float32')
        : tf.tensor(values.slice(), shape as number[], 'float32');
    return tf.variable(init, false, name, 'float32');
  });
}

/** Bytes of Lion state for a parameter of `shape`: one float32 momentum, 4 bytes per element. */
export function lionStateBytes(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return 4 * n;
}
