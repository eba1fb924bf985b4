import {
  type ActivationStrategy,
  type SavedTensor,
  type SavedTensorCodec,
  SPECIFICATION_VERSION,
} from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { HostCopy } from './host-copy.ts';

/** Backends whose tensors already live in host memory: copying them "to the host" would save nothing. */
export const HOST_MEMORY_BACKENDS: readonly string[] = ['cpu', 'wasm'];

/** Whether offload moves anything on `backend` (default: the current tfjs backend). */
export function offloadEffective(backend: string = tf.getBackend()): boolean {
  return !HOST_MEMORY_BACKENDS.includes(backend);
}

/** Kept on the device as is: offload on a backend whose device memory is host memory. */
class Resident implements SavedTensor {
  private readonly t: tf.Tensor;
  constructor(x: tf.Tensor) {
    this.t = tf.clone(x);
  }
  get bytes(): number {
    return 4 * this.t.size;
  }
  decode(): tf.Tensor {
    return tf.clone(this.t);
  }
  dispose(): void {
    this.t.dispose();
  }
}

/**
 * Saved segment inputs in host memory. On a GPU backend (webgpu, cuda) `encode` starts an asynchronous copy to a
 * host Float32Array and the device buffer is freed when it lands (the engine waits for it one segment later, so
 * the copy overlaps that segment's forward); the recompute's input is uploaded one segment ahead (`prefetch`).
 * On cpu and wasm, where the "device" is host memory, it keeps the tensor as is (a no-op, and `describe` says so).
 */
export const offloadCodec: SavedTensorCodec = {
  encode(x: tf.Tensor): SavedTensor {
    return offloadEffective() ? new HostCopy(x) : new Resident(x);
  },
  /** Device bytes held once the copy has landed: 0 where offload is effective, the whole tensor elsewhere. */
  savedBytes(shape: readonly number[]): number {
    return offloadEffective() ? 0 : 4 * shape.reduce((a, b) => a * b, 1);
  },
};

export interface OffloadStrategy extends ActivationStrategy {
  readonly codec: SavedTensorCodec;
}

/** Every saved segment input offloaded to host memory (for a per-segment choice, pass `offloadCodec` in `segmentCodecs`). */
export function offload(): OffloadStrategy {
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'activation',
    name: 'offload',
    codec: offloadCodec,
    describe: () => {
      const backend = tf.getBackend();
      return offloadEffective(backend)
        ? { target: 'host', backend }
        : {
            target: 'none',
            backend,
            note: `backend ${backend} keeps tensors in host memory: offload is a no-op`,
          };
    },
  };
}
