import { ShapeError } from '@kstar/core';
import type * as tf from '@tensorflow/tfjs-core';

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
