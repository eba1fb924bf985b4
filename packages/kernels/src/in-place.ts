import type * as tf from '@tensorflow/tfjs-core';

/**
 * The output of a kernel that wrote `t`'s buffer in place: a fresh `{dataId, shape, dtype}` (never the Variable object
 * itself, whose disposal by the caller would kill it) after one `incRef`, because the engine wraps the returned info
 * in a new Tensor that the caller disposes at once while the variable keeps its own reference.
 */
export function inPlaceOutput(backend: { incRef(dataId: tf.DataId): void }, t: tf.TensorInfo): tf.TensorInfo {
  backend.incRef(t.dataId);
  return { dataId: t.dataId, shape: t.shape, dtype: t.dtype };
}
