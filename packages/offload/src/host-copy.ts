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
  private host: Float32Array | undefined;
  private uploaded: tf.Tensor | undefined;
  private readonly copy: Promise<void>;
  private disposed = false;
  private readonly shape: number[];

  constructor(x: tf.Tensor) {
    this.shape = x.shape.slice();
    // Our own handle on x's buffer (a clone shares it): the caller may dispose x at once.
    this.device = tf.clone(x);
    this.copy = (this.device.data() as Promise<Float32Array>).then((data) => {
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
    return t ? 4 * t.size : 0;
  }

  /** Host bytes held. */
  get hostBytes(): number {
    return this.host?.byteLength ?? 0;
  }

  settled(): Promise<void> {
    return this.copy;
  }

  prefetch(): void {
    if (this.host && !this.uploaded) this.uploaded = tf.tensor(this.host, this.shape, 'float32');
  }

  decode(): tf.Tensor {
    if (this.device) return tf.clone(this.device);
    if (this.uploaded) {
      const t = this.uploaded;
      this.uploaded = undefined;
      return t;
    }
    return tf.tensor(this.host!, this.shape, 'float32');
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
