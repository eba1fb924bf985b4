import { InputError, ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { type CpuKernel, defineKernel, type WasmKernel, type WebGPUKernel } from './define-kernel.ts';
import { flatProgram } from './wgsl.ts';

/**
 * Packed low-precision storage: unsigned 8-bit or 16-bit values stored four or two per int32 element, so
 * `tf.memory()`, `uniqueBufferBytes` and the memory ledger count the true bytes (tfjs has no uint8/uint16 dtype).
 *
 * Layout (little-endian within a word, the same on every backend): value i lives in word ⌊i/k⌋ (k = 32/bits) at
 * bits [bits·(i mod k), bits·(i mod k + 1)); the word is the two's-complement int32 of those bits. Unused slots of the
 * last word are 0. Values are taken modulo 2^bits (their low bits) when packing; unpacking yields 0 … 2^bits − 1.
 */
export type PackBits = 8 | 16;

/** Int32 elements holding `n` packed values: ⌈n/4⌉ (8-bit) or ⌈n/2⌉ (16-bit). */
export function packedLength(n: number, bits: PackBits): number {
  return Math.ceil(n / (32 / bits));
}

function checkBits(bits: unknown, where: string): asserts bits is PackBits {
  if (bits !== 8 && bits !== 16) {
    throw new InputError(`${where}: bits = ${String(bits)} is invalid: it must be 8 or 16`);
  }
}

/** Packs `values` (any integers; their low `bits` bits are kept) into `out` (length ≥ packedLength). */
export function packArray(
  values: ArrayLike<number>,
  bits: PackBits,
  out: Int32Array = new Int32Array(packedLength(values.length, bits)),
): Int32Array {
  const k = 32 / bits;
  const mask = bits === 8 ? 0xff : 0xffff;
  const words = packedLength(values.length, bits);
  for (let w = 0; w < words; w++) {
    let word = 0;
    const base = w * k;
    const end = Math.min(k, values.length - base);
    for (let j = 0; j < end; j++) word |= (values[base + j]! & mask) << (bits * j);
    out[w] = word;
  }
  return out;
}

/** Unpacks the first `n` values of `packed` into `out` (length ≥ n), as integers 0 … 2^bits − 1. */
export function unpackArray(
  packed: ArrayLike<number>,
  n: number,
  bits: PackBits,
  out: Int32Array = new Int32Array(n),
): Int32Array {
  const k = 32 / bits;
  const mask = bits === 8 ? 0xff : 0xffff;
  for (let i = 0; i < n; i++) out[i] = (packed[(i / k) | 0]! >>> (bits * (i % k))) & mask;
  return out;
}

export interface PackArgs {
  values: tf.Tensor;
  bits: PackBits;
}
export interface UnpackArgs {
  packed: tf.Tensor;
  n: number;
  bits: PackBits;
}

type PackInputs = { values: tf.TensorInfo };
type PackAttrs = { bits: PackBits };
type UnpackInputs = { packed: tf.TensorInfo };
type UnpackAttrs = { bits: PackBits; n: number };

const packCpu: CpuKernel<PackInputs, PackAttrs> = ({ inputs: { values }, backend: b, attrs: { bits } }) => {
  const v = b.data.get(values.dataId).values;
  return b.makeTensorInfo([packedLength(v.length, bits)], 'int32', packArray(v, bits));
};

const unpackCpu: CpuKernel<UnpackInputs, UnpackAttrs> = ({
  inputs: { packed },
  backend: b,
  attrs: { bits, n },
}) => {
  return b.makeTensorInfo([n], 'int32', unpackArray(b.data.get(packed.dataId).values, n, bits));
};

const packWasm: WasmKernel<PackInputs, PackAttrs> = ({ inputs: { values }, backend: b, attrs: { bits } }) => {
  const n = tf.util.sizeFromShape(values.shape);
  const out = b.makeOutput([packedLength(n, bits)], 'int32');
  // Views after the allocation (the heap may grow and detach older views).
  packArray(b.typedArrayFromHeap(values), bits, b.typedArrayFromHeap(out) as Int32Array);
  return out;
};

const unpackWasm: WasmKernel<UnpackInputs, UnpackAttrs> = ({
  inputs: { packed },
  backend: b,
  attrs: { bits, n },
}) => {
  const out = b.makeOutput([n], 'int32');
  unpackArray(b.typedArrayFromHeap(packed), n, bits, b.typedArrayFromHeap(out) as Int32Array);
  return out;
};

const i32 = (x: number) => ({ type: 'int32' as const, data: [x] });

/** One thread per word: gathers k values, masks them, shifts them in place (u32 arithmetic, bitcast to i32). */
const packWebGPU: WebGPUKernel<PackInputs, PackAttrs> = ({
  inputs: { values },
  backend: b,
  attrs: { bits },
}) => {
  const n = tf.util.sizeFromShape(values.shape);
  const k = 32 / bits;
  const words = packedLength(n, bits);
  return b.runWebGPUProgram(
    flatProgram({
      key: `pack${bits}`,
      size: words,
      inputs: ['V'],
      uniforms: 'n : i32,',
      body: `var word = 0u;
          for (var j = 0; j < ${k}; j++) {
            let i = index * ${k} + j;
            if (i < uniforms.n) { word = word | ((bitcast<u32>(V[i]) & ${(2 ** bits - 1) >>> 0}u) << (${bits}u * u32(j))); }
          }
          result[index] = bitcast<i32>(word);`,
    }),
    [{ dataId: values.dataId, shape: [n], dtype: values.dtype }],
    'int32',
    [i32(n)],
  );
};

const unpackWebGPU: WebGPUKernel<UnpackInputs, UnpackAttrs> = ({
  inputs: { packed },
  backend: b,
  attrs: { bits, n },
}) => {
  const k = 32 / bits;
  return b.runWebGPUProgram(
    flatProgram({
      key: `unpack${bits}`,
      size: n,
      inputs: ['P'],
      body: `let word = bitcast<u32>(P[index / ${k}]);
          result[index] = i32((word >> (${bits}u * u32(index % ${k}))) & ${(2 ** bits - 1) >>> 0}u);`,
    }),
    [{ dataId: packed.dataId, shape: [tf.util.sizeFromShape(packed.shape)], dtype: 'int32' }],
    'int32',
  );
};

/**
 * Portable pack (tfjs int32 ops only). EXACT ONLY WHERE tfjs's int32 arithmetic is exact: cpu and tensorflow (tfjs-node).
 * wasm's int32 FloorDiv/Mod and webgpu's int32 Mul go through float32 (24-bit mantissa) and corrupt words ≥ 2^24, so
 * `packInts`/`unpackInts` always use the native kernels there (they never decline); webgl has neither (use cpu). The top value of a word is made signed first (v − 2^bits when v ≥ 2^(bits−1)),
 * so no intermediate leaves the int32 range: word = Σ_{j<k−1} v_j·2^(bits·j) + signed(v_{k−1})·2^(bits·(k−1)).
 */
export function packIntsOps({ values, bits }: PackArgs): tf.Tensor1D {
  const n = values.size;
  const k = 32 / bits;
  const words = packedLength(n, bits);
  const base = 2 ** bits;
  return tf.tidy(() => {
    const v = tf.mod(tf.reshape(values, [n]), tf.scalar(base, 'int32')); // [n] in [0, 2^bits)
    const padded = tf.pad(v, [[0, words * k - n]]); // [words·k]
    const cols = tf.unstack(tf.reshape(padded, [words, k]), 1); // k × [words]
    let word = cols[0]!;
    for (let j = 1; j < k; j++) {
      let c = cols[j]!;
      if (j === k - 1) {
        c = tf.sub(c, tf.mul(tf.cast(tf.greaterEqual(c, base / 2), 'int32'), tf.scalar(base, 'int32')));
      }
      word = tf.add(word, tf.mul(c, tf.scalar(2 ** (bits * j), 'int32')));
    }
    return word as tf.Tensor1D;
  });
}

/** Portable unpack: value j of a word = floorMod(floorDiv(word, 2^(bits·j)), 2^bits) (exact int32 arithmetic). */
export function unpackIntsOps({ packed, n, bits }: UnpackArgs): tf.Tensor1D {
  const k = 32 / bits;
  const words = packed.size;
  return tf.tidy(() => {
    const w = tf.reshape(packed, [words]);
    const parts: tf.Tensor[] = [];
    for (let j = 0; j < k; j++) {
      const shifted = j === 0 ? w : tf.floorDiv(w, tf.scalar(2 ** (bits * j), 'int32'));
      parts.push(tf.mod(shifted, tf.scalar(2 ** bits, 'int32')));
    }
    const all = tf.reshape(tf.stack(parts, 1), [words * k]); // [words·k]
    return tf.slice(all, 0, n) as tf.Tensor1D;
  });
}

export const packKernel = defineKernel<PackArgs, tf.Tensor1D, PackInputs, PackAttrs>({
  name: 'KstarPack',
  backends: { cpu: packCpu, wasm: packWasm, webgpu: packWebGPU },
  invoke: ({ values, bits }) => ({ inputs: { values }, attrs: { bits } }),
  finish: (outputs) => outputs[0] as tf.Tensor1D,
  fallback: packIntsOps,
});

export const unpackKernel = defineKernel<UnpackArgs, tf.Tensor1D, UnpackInputs, UnpackAttrs>({
  name: 'KstarUnpack',
  backends: { cpu: unpackCpu, wasm: unpackWasm, webgpu: unpackWebGPU },
  invoke: ({ packed, n, bits }) => ({ inputs: { packed }, attrs: { bits, n } }),
  finish: (outputs) => outputs[0] as tf.Tensor1D,
  fallback: unpackIntsOps,
});

/**
 * Packs int32 `values` (any shape, n elements; the low `bits` bits of each are kept) into a new int32 tensor
 * [⌈n/(32/bits)⌉]. `KstarPack` natively on cpu, wasm and webgpu; tfjs int32 ops elsewhere or with `impl: 'fallback'`.
 */
export function packInts(
  values: tf.Tensor,
  bits: PackBits,
  options?: { impl?: 'auto' | 'fallback' },
): tf.Tensor1D {
  checkBits(bits, 'packInts');
  if (values.dtype !== 'int32') {
    throw new ShapeError(`packInts: values have dtype ${values.dtype}, expected int32: cast them first`);
  }
  if (values.size === 0) return tf.zeros([0], 'int32');
  return packKernel.run({ values, bits }, options);
}

/** Unpacks the first `n` values of an int32 tensor written by `packInts` into a new int32 tensor [n] (0 … 2^bits − 1). */
export function unpackInts(
  packed: tf.Tensor,
  n: number,
  bits: PackBits,
  options?: { impl?: 'auto' | 'fallback' },
): tf.Tensor1D {
  checkBits(bits, 'unpackInts');
  if (packed.dtype !== 'int32') {
    throw new ShapeError(`unpackInts: packed has dtype ${packed.dtype}, expected int32`);
  }
  if (!(Number.isInteger(n) && n >= 0 && packedLength(n, bits) <= packed.size)) {
    throw new InputError(
      `unpackInts: n = ${n} is invalid: it must be an integer in [0, ${packed.size * (32 / bits)}] (${packed.size} words of ${32 / bits} values)`,
    );
  }
  if (n === 0) return tf.zeros([0], 'int32');
  return unpackKernel.run({ packed, n, bits }, options);
}
