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

/** The outputs of a kernel that wrote each of `written` in place (absent ones skipped), in that order. */
export function inPlaceOutputs(
  backend: { incRef(dataId: tf.DataId): void },
  written: readonly (tf.TensorInfo | undefined)[],
): tf.TensorInfo[] {
  return written.filter((t): t is tf.TensorInfo => t != null).map((t) => inPlaceOutput(backend, t));
}

/**
 * webgpu, after an in-place kernel's dispatches: frees its small temporaries and drops the CPU copies an earlier
 * read cached of each of `written` (stale now).
 */
export function releaseAfterWebGPUWrite(
  backend: {
    disposeData(dataId: tf.DataId): boolean;
    tensorMap: { get(dataId: tf.DataId): { values: unknown } };
  },
  written: readonly (tf.TensorInfo | undefined)[],
  temps: readonly tf.TensorInfo[] = [],
): void {
  for (const t of temps) backend.disposeData(t.dataId);
  for (const t of written) if (t != null) backend.tensorMap.get(t.dataId).values = null;
}

/**
 * Whether a kernel may write `written` in place: no buffer among them and `read` is shared (two arguments on one
 * buffer), and nothing else holds a written one (`refCount` 1: no clone, no tape-saved copy sees the write).
 */
export function canWriteInPlace(
  written: readonly (tf.TensorInfo | undefined)[],
  read: readonly tf.TensorInfo[],
  backend: { refCount(dataId: tf.DataId): number },
): boolean {
  const own = written.filter((t): t is tf.TensorInfo => t != null);
  const ids = [...own, ...read].map((t) => t.dataId);
  if (new Set(ids).size !== ids.length) return false;
  return own.every((t) => backend.refCount(t.dataId) === 1);
}
