/**
 * Block-wise absmax 8-bit quantization of NON-NEGATIVE float32 arrays (Adagrad accumulators), local to this package.
 * It moves to `@kstar/kernels` when the compressed-state issue lands (one quantizer for every compressed state).
 *
 * Format, for n elements:
 * - blocks of 256 consecutive elements (the last one may be shorter: the tail); `absmax[b]` = max |x| over block b,
 *   float32 [⌈n/256⌉];
 * - linear unsigned codes c = round(x / absmax · 255) ∈ [0, 255] (x < 0 is clamped to 0, absmax 0 gives code 0),
 *   decoded as c / 255 · absmax: error ≤ ½ · absmax / 255 per element (plus float32 rounding);
 * - codes packed four per int32, element 4j + k in byte k of word j (little end first), int32 [⌈n/4⌉]; byte 3 is
 *   stored with its top bit flipped (c3 − 128), so packing is exact int32 arithmetic with no overflow on every
 *   backend (the tfjs-ops path computes q0 + 256·q1 + 65536·q2 + 2²⁴·(q3 − 128)). Padding codes are 0.
 * Bytes: 4⌈n/4⌉ + 4⌈n/256⌉ (≈ 1.016 per element), against 4n for float32.
 *
 * Two implementations: typed-array loops (backends with synchronous read-back: cpu, wasm, tensorflow) and tfjs ops
 * (everywhere, no read-back; used on webgpu in Node, which cannot read synchronously). Both produce the same codes up
 * to float32 rounding ties.
 */
import { activeWebGPUBackend, flatProgram } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';

export const QUANT_BLOCK = 256;
const LEVELS = 255;

export interface QuantizedArray {
  /** int32 words, four codes each: [⌈n/4⌉]. */
  codes: Int32Array;
  /** float32 block maxima: [⌈n/256⌉]. */
  absmax: Float32Array;
}

/** Bytes of the quantized form of n elements: 4⌈n/4⌉ (codes) + 4⌈n/256⌉ (absmax). */
export function quantizedBytes(n: number): number {
  return 4 * Math.ceil(n / 4) + 4 * Math.ceil(n / QUANT_BLOCK);
}

/** Quantizes `x` (values meant to be ≥ 0; negatives are stored as 0). */
export function quantizeArray(x: ArrayLike<number>): QuantizedArray {
  const n = x.length;
  const nb = Math.ceil(n / QUANT_BLOCK);
  const absmax = new Float32Array(nb);
  const codes = new Int32Array(Math.ceil(n / 4));
  for (let b = 0; b < nb; b++) {
    const end = Math.min(n, (b + 1) * QUANT_BLOCK);
    let m = 0;
    for (let i = b * QUANT_BLOCK; i < end; i++) m = Math.max(m, Math.abs(x[i]!));
    absmax[b] = m;
    const scale = m > 0 ? LEVELS / Math.fround(m) : 0;
    for (let i = b * QUANT_BLOCK; i < end; i++) {
      const c = Math.min(LEVELS, Math.max(0, Math.round(x[i]! * scale)));
      const k = i & 3;
      const word = i >> 2;
      codes[word] = codes[word]! | ((k === 3 ? c ^ 0x80 : c) << (8 * k));
    }
  }
  // Words whose byte 3 is padding still need the flipped zero code there.
  for (let i = n; i < codes.length * 4; i++) if ((i & 3) === 3) codes[i >> 2] = codes[i >> 2]! | (0x80 << 24);
  return { codes, absmax };
}

/** The code of element i (0…255). */
export function codeAt(codes: Int32Array, i: number): number {
  const byte = (codes[i >> 2]! >>> (8 * (i & 3))) & 0xff;
  return (i & 3) === 3 ? byte ^ 0x80 : byte;
}

/** Decodes n elements: c / 255 · absmax. */
export function dequantizeArray(q: QuantizedArray, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (codeAt(q.codes, i) / LEVELS) * q.absmax[Math.floor(i / QUANT_BLOCK)]!;
  return out;
}

/** The quantized form of a tensor: `codes` int32 [⌈n/4⌉], `absmax` float32 [⌈n/256⌉] (new tensors, caller owns). */
export interface QuantizedTensor {
  codes: tf.Tensor1D;
  absmax: tf.Tensor1D;
}

/**
 * Whether the active backend reads synchronously. WebGPU in Node cannot (its `readSync` needs an OffscreenCanvas),
 * so paths that need the values on the host use tfjs ops there instead.
 */
export function canReadSync(): boolean {
  return (
    tf.getBackend() !== 'webgpu' ||
    typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas !== 'undefined'
  );
}

export type QuantizeImpl = 'auto' | 'arrays' | 'ops';

function pick(impl: QuantizeImpl): 'arrays' | 'ops' {
  if (impl === 'auto') return canReadSync() ? 'arrays' : 'ops';
  return impl;
}

/** Quantizes a float32 tensor of any shape (not disposed). `impl`: typed arrays (needs sync read) or tfjs ops. */
export function quantizeTensor(x: tf.Tensor, impl: QuantizeImpl = 'auto'): QuantizedTensor {
  const n = x.size;
  if (pick(impl) === 'arrays') {
    const q = quantizeArray(x.dataSync() as Float32Array);
    return { codes: tf.tensor1d(q.codes, 'int32'), absmax: tf.tensor1d(q.absmax, 'float32') };
  }
  const nb = Math.ceil(n / QUANT_BLOCK);
  const words = Math.ceil(n / 4);
  return tf.tidy(() => {
    const blocks = tf.reshape(tf.pad(tf.reshape(x, [n]), [[0, nb * QUANT_BLOCK - n]]), [nb, QUANT_BLOCK]); // [nb, 256]
    const absmax = tf.max(tf.abs(blocks), 1); // [nb]
    const scale = tf.where(tf.greater(absmax, 0), tf.div(LEVELS, absmax), tf.zerosLike(absmax)); // [nb]
    const q = tf.clipByValue(tf.round(tf.mul(blocks, tf.expandDims(scale, 1))), 0, LEVELS); // [nb, 256]
    const q4 = tf.slice(tf.reshape(q, [nb * QUANT_BLOCK]), 0, words * 4); // [4·words], float32 codes
    return { codes: packCodes(q4, words), absmax: absmax as tf.Tensor1D };
  });
}

/**
 * float32 codes [4·words] → int32 words. webgpu: a WGSL program with bit operations (its int32 tensor arithmetic
 * runs through float32 and loses the low bytes above 2^24, measured); elsewhere exact int32 arithmetic
 * q0 + 256·q1 + 65536·q2 + 2^24·(q3 − 128) (within int32, no overflow).
 */
function packCodes(q4: tf.Tensor, words: number): tf.Tensor1D {
  if (tf.getBackend() === 'webgpu') {
    const b = activeWebGPUBackend('lazyAdagrad packCodes');
    const program = flatProgram({
      key: 'lazy_adagrad_pack8',
      size: words,
      inputs: ['Q'],
      body: `let base = index * 4;
          let c0 = u32(Q[base]); let c1 = u32(Q[base + 1]); let c2 = u32(Q[base + 2]); let c3 = u32(Q[base + 3]) ^ 128u;
          result[index] = bitcast<i32>(c0 | (c1 << 8u) | (c2 << 16u) | (c3 << 24u));`,
    });
    const info = b.runWebGPUProgram(program, [q4], 'int32');
    return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor1D;
  }
  return tf.tidy(() => {
    const qw = tf.cast(tf.reshape(q4, [words, 4]), 'int32');
    const [q0, q1, q2, q3] = tf.unstack(qw, 1) as tf.Tensor1D[]; // 4 × [words]
    const low = tf.add(
      tf.add(q0!, tf.mul(q1!, tf.scalar(256, 'int32'))),
      tf.mul(q2!, tf.scalar(65536, 'int32')),
    );
    const high = tf.mul(tf.sub(q3!, tf.scalar(128, 'int32')), tf.scalar(16777216, 'int32'));
    return tf.add(low, high) as tf.Tensor1D;
  });
}

/** int32 words [words] → float32 codes [4·words] (the inverse of `packCodes`). */
function unpackCodes(p: tf.Tensor, words: number): tf.Tensor1D {
  if (tf.getBackend() === 'webgpu') {
    const b = activeWebGPUBackend('lazyAdagrad unpackCodes');
    const program = flatProgram({
      key: 'lazy_adagrad_unpack8',
      size: words * 4,
      inputs: ['P'],
      body: `let w = bitcast<u32>(P[index / 4]);
          let k = u32(index % 4);
          var c = (w >> (8u * k)) & 255u;
          if (k == 3u) { c = c ^ 128u; }
          result[index] = f32(c);`,
    });
    const info = b.runWebGPUProgram(program, [p], 'float32');
    return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor1D;
  }
  return tf.tidy(() => {
    const i32 = (v: number) => tf.scalar(v, 'int32');
    const hi = tf.floorDiv(p, i32(16777216)); // q3 − 128 ∈ [−128, 127]
    const r3 = tf.sub(p, tf.mul(hi, i32(16777216))); // [0, 2^24)
    const q2 = tf.floorDiv(r3, i32(65536));
    const r2 = tf.sub(r3, tf.mul(q2, i32(65536)));
    const q1 = tf.floorDiv(r2, i32(256));
    const q0 = tf.sub(r2, tf.mul(q1, i32(256)));
    const q3 = tf.add(hi, i32(128));
    return tf.cast(tf.reshape(tf.stack([q0, q1, q2, q3], 1), [words * 4]), 'float32') as tf.Tensor1D;
  });
}

/** Decodes into a new float32 tensor of `shape` (inputs not disposed). */
export function dequantizeTensor(
  q: QuantizedTensor,
  shape: readonly number[],
  impl: QuantizeImpl = 'auto',
): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (pick(impl) === 'arrays') {
    const values = dequantizeArray(
      { codes: q.codes.dataSync() as Int32Array, absmax: q.absmax.dataSync() as Float32Array },
      n,
    );
    return tf.tensor(values, shape as number[], 'float32');
  }
  const nb = Math.ceil(n / QUANT_BLOCK);
  const words = Math.ceil(n / 4);
  return tf.tidy(() => {
    const c = unpackCodes(q.codes, words); // [4·words]
    const blocks = tf.reshape(tf.pad(c, [[0, nb * QUANT_BLOCK - words * 4]]), [nb, QUANT_BLOCK]); // [nb, 256]
    const values = tf.mul(blocks, tf.expandDims(tf.div(q.absmax, LEVELS), 1)); // [nb, 256]
    return tf.reshape(tf.slice(tf.reshape(values, [nb * QUANT_BLOCK]), 0, n), shape as number[]);
  });
}
