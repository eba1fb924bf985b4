import type { SavedTensor } from '@kstar/core';
import { trackHostBytes } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * A tensor's data moved to host memory. The copy-out starts at once (`tf.Tensor.data()`, asynchronous on GPU
 * backends, so it overlaps the work queued after it); once it lands, the device buffer is released. `prefetch`
 * uploads it again ahead of `decode` (the upload is queued on the device and overlaps the current segment's
 * recompute); `decode` returns it (or the still-resident copy when the copy-out has not landed yet).
 */
export class HostCopy implements SavedTensor {
  private device: tf.Tensor | undefined;
  private host: Float32Array | Int32Array | Uint8Array | undefined;
  private uploaded: tf.Tensor | undefined;
  private readonly copy: Promise<void>;
  private disposed = false;
  private readonly shape: number[];
  /** The tensor's dtype, kept on the way back (optimizer state may be int32 or quantized). */
  readonly dtype: tf.DataType;

  constructor(x: tf.Tensor) {
    this.shape = x.shape.slice();
    this.dtype = x.dtype;
    // Our own handle on x's buffer (a clone shares it): the caller may dispose x at once.
    this.device = tf.clone(x);
    this.copy = (this.device.data() as Promise<Float32Array | Int32Array | Uint8Array>).then((data) => {
      if (this.disposed) return;
      this.host = data;
      trackHostBytes(data.byteLength);
      this.device?.dispose();
      this.device = undefined;
    });
  }

  /** Device bytes still held for this tensor (0 once the copy has landed and no upload is pending). */
  get bytes(): number {
    const t = this.device ?? this.uploaded;
    return t ? tensorBytes(t) : 0;
  }

  /** Host bytes held. */
  get hostBytes(): number {
    return this.host?.byteLength ?? 0;
  }

  settled(): Promise<void> {
    return this.copy;
  }

  prefetch(): void {
    if (this.host && !this.uploaded) this.uploaded = tf.tensor(this.host, this.shape, this.dtype);
  }

  decode(): tf.Tensor {
    if (this.device) return tf.clone(this.device);
    if (this.uploaded) {
      const t = this.uploaded;
      this.uploaded = undefined;
      return t;
    }
    return tf.tensor(this.host!, this.shape, this.dtype);
  }

  /**
   * The data back on the device as a tensor the caller owns alone (its buffer has no other reference, so in-place
   * kernels may write it), then this copy is disposed: the device copy itself when the copy-out has not landed yet,
   * else the prefetched upload, else a fresh upload.
   */
  take(): tf.Tensor {
    let t: tf.Tensor;
    if (this.device) {
      t = this.device;
      this.device = undefined;
    } else if (this.uploaded) {
      t = this.uploaded;
      this.uploaded = undefined;
    } else t = tf.tensor(this.host!, this.shape, this.dtype);
    this.dispose();
    return t;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.device?.dispose();
    this.uploaded?.dispose();
    if (this.host) trackHostBytes(-this.host.byteLength);
    this.host = undefined;
  }
}

/** Bytes of a tensor's values (strings aside: optimizer state and activations are numeric). */
function tensorBytes(t: tf.Tensor): number {
  return t.size * (t.dtype === 'bool' ? 1 : 4);
}
