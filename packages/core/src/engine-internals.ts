import * as tf from '@tensorflow/tfjs-core';

/**
 * What K* reaches of tfjs-core 4.22's Engine beyond its public type: where a data buffer starts and stops being
 * tracked (the memory ledger, peak measurements) and the gradient tape (nested gradients inside a custom op).
 */
export interface EngineInternals {
  trackTensor(a: tf.Tensor, backend: unknown): void;
  removeDataId(dataId: object, backend: unknown): void;
  state: { tensorInfo: WeakMap<object, { bytes: number; backend: unknown }>; activeTape: unknown };
}

/** tfjs's engine with its internals typed: the one place K* steps outside tfjs's types to reach them. */
export function engineInternals(): EngineInternals {
  return tf.engine() as unknown as EngineInternals;
}
