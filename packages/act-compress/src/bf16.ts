import { bfloat16Bits, float32OfBfloat16, type SavedTensor, type SavedTensorCodec } from '@kstar/core';
import { expand24, split24 } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';

/** float32 → bfloat16 bits (round to nearest, ties to even; NaN stays NaN): core's `bfloat16Bits`. */
export const toBf16Bits: (f32: Float32Array) => Uint16Array = bfloat16Bits;

/** bfloat16 bits → float32 (exact): core's `float32OfBfloat16`. */
export const fromBf16Bits: (b: Uint16Array, out?: Float32Array) => Float32Array = float32OfBfloat16;

/**
 * Saved segment inputs as bfloat16, two per int32 element (value i in word ⌊i/2⌋, bits 16·(i mod 2)): the high
 * half of `@kstar/kernels`' 24-bit split (round to nearest even, NaN kept, finite values saturate at the largest
 * bf16 instead of rounding to Inf), run by its native kernel on cpu, wasm and WebGPU, so nothing is read back to
 * the host (WebGPU in Node has no synchronous read). The split's 8-bit correction is dropped at once. Bytes:
 * 4·⌈n/2⌉; the encode briefly holds the correction too (1 byte an element).
 */
export const bf16Codec: SavedTensorCodec = {
  encode(x: tf.Tensor): SavedTensor {
    const shape = [...x.shape];
    const n = x.size;
    const flat = tf.reshape(x, [n]); // [n]
    const { hi, lo } = split24(flat);
    flat.dispose();
    lo.dispose();
    let packed: tf.Tensor | undefined = hi; // int32 [⌈n/2⌉]
    return {
      bytes: 4 * Math.ceil(n / 2),
      decode() {
        if (!packed) throw new Error('bf16 saved tensor used after dispose');
        const words = packed;
        return tf.tidy(() => tf.reshape(expand24(words, n), shape)); // [shape]
      },
      dispose() {
        packed?.dispose();
        packed = undefined;
      },
    };
  },
  savedBytes: (shape) => 4 * Math.ceil(shape.reduce((a, b) => a * b, 1) / 2),
};
