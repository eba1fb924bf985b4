import type { SavedTensor, SavedTensorCodec } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';

/** float32 → bfloat16 bits (round to nearest, ties to even; NaN stays NaN). */
export function toBf16Bits(f32: Float32Array): Uint16Array {
  const u = new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
  const out = new Uint16Array(f32.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
      out[i] = (x >>> 16) | 0x40; // quiet NaN
    } else {
      out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

/** bfloat16 bits → float32 (exact). */
export function fromBf16Bits(b: Uint16Array, out = new Float32Array(b.length)): Float32Array {
  const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < b.length; i++) u[i] = b[i]! << 16;
  return out;
}

/**
 * Saved segment inputs as bfloat16, two per int32 element (the layout of `@kstar/kernels`' 16-bit `packInts`: value
 * i in word ⌊i/2⌋, bits 16·(i mod 2)). Encoding reads the tensor back to the host (`dataSync`) and rounds there:
 * tfjs has no bitcast op. Bytes: 4·⌈n/2⌉.
 */
export const bf16Codec: SavedTensorCodec = {
  encode(x: tf.Tensor): SavedTensor {
    const shape = [...x.shape];
    const n = x.size;
    const bits = toBf16Bits(x.dataSync() as Float32Array);
    const words = new Int32Array(Math.ceil(n / 2));
    // Little-endian: a Uint16Array view over the words puts value i in the low half of word ⌊i/2⌋ when i is even.
    new Uint16Array(words.buffer).set(bits);
    let packed: tf.Tensor | undefined = tf.tensor1d(words, 'int32');
    return {
      bytes: 4 * words.length,
      decode() {
        if (!packed) throw new Error('bf16 saved tensor used after dispose');
        const w = packed.dataSync() as Int32Array;
        const halves = new Uint16Array(w.buffer, w.byteOffset, n);
        return tf.tensor(fromBf16Bits(halves), shape, 'float32');
      },
      dispose() {
        packed?.dispose();
        packed = undefined;
      },
    };
  },
  savedBytes: (shape) => 4 * Math.ceil(shape.reduce((a, b) => a * b, 1) / 2),
};
