import { InputError, ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * The checks an optimizer update makes of its tensors, with one wording: each of `like` must have the parameter's
 * shape (`hint`, when given, ends the message with what to pass instead).
 */
export function checkShapeOfParam(
  where: string,
  param: tf.Variable,
  like: Record<string, tf.Tensor>,
  hint?: string,
): void {
  for (const [name, t] of Object.entries(like)) {
    if (t.shape.length !== param.shape.length || t.shape.some((d, i) => d !== param.shape[i])) {
      throw new ShapeError(
        `${where}: ${name} has shape [${t.shape}] but param '${param.name}' has [${param.shape}]${hint == null ? '' : `: ${hint}`}`,
      );
    }
  }
}

/** Each of `tensors` must be float32 (the update kernels read and write float32 only). */
export function checkFloat32(where: string, tensors: Record<string, tf.Tensor>): void {
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype !== 'float32') {
      throw new ShapeError(`${where}: ${name} has dtype ${t.dtype}, expected float32: cast it first`);
    }
  }
}

/**
 * The state of one parameter's update must hold exactly the `expected` keys (of `keys`), each float32 of its
 * expected shape. `needs` qualifies the parameter in the message (`' with beta1'`), `create` says how to make the
 * right state (`'adalomo().init'`).
 */
export function checkStateShapes<K extends string>(
  where: string,
  param: tf.Variable,
  state: Partial<Record<K, tf.Tensor>>,
  expected: Partial<Record<K, readonly number[]>>,
  keys: readonly K[],
  { needs = '', create }: { needs?: string; create: string },
): void {
  for (const key of keys) {
    const want = expected[key];
    const got = state[key];
    if (want == null && got == null) continue;
    if (want == null || got == null) {
      throw new InputError(
        `${where}: the state of '${param.name}' ${got == null ? 'lacks' : 'has an unexpected'} '${key}' (a [${param.shape}] parameter${needs} needs ${Object.keys(expected).join(', ')}): create it with ${create}`,
      );
    }
    if (!tf.util.arraysEqual(got.shape, [...want]) || got.dtype !== 'float32') {
      throw new ShapeError(
        `${where}: state '${key}' of '${param.name}' is ${got.dtype}[${got.shape}], expected float32[${want}] for a [${param.shape}] parameter`,
      );
    }
  }
}
