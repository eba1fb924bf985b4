import { InputError, ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { type CpuKernel, defineKernel, type WasmKernel, type WebGPUKernel } from './define-kernel.ts';
import { packedLength, packInts, unpackInts } from './pack.ts';
import { flatProgram } from './wgsl.ts';

/**
 * Block-wise 8-bit quantization with bitsandbytes' dynamic ("dynamic tree") code books.
 *
 * A float32 tensor x of n elements is cut into blocks of B consecutive elements (row-major, the last block may be
 * shorter). Per block: absmax = max |x| (float32); each element is stored as the 8-bit index of the code-book entry
 * nearest to x/absmax (float32 division), four codes per int32 word (`pack.ts` layout). Dequantized: code[c]·absmax.
 * Storage: 4⌈n/4⌉ + 4⌈n/B⌉ bytes.
 *
 * Nearest code, identical on every backend: lo = the largest index with code[lo] ≤ v (0 when v < code[0]), found by
 * an 8-step binary search over the sorted code book; hi = min(lo + 1, 255); the code is hi when v > (code[lo] +
 * code[hi])·0.5 (float32), else lo (ties go down). Values beyond the ends clamp to the end codes.
 *
 * Special blocks (documented behaviour, tested):
 * - all zeros (absmax = 0): every code is the code of 0.0 (127 signed, 0 unsigned); dequantizes to exactly 0.
 * - holding ±Inf or NaN: absmax is stored as +Inf or NaN (NaN wins), every code is the code of 0.0, and the whole
 *   block dequantizes to NaN: a poisoned block stays visibly poisoned instead of turning into plausible numbers.
 *
 * `signFix` (bitsandbytes' rule for Adam's first moment): a negative value whose nearest code is +0 gets the code
 * below it (the smallest negative entry), so the sign of a tiny momentum survives quantization. Off by default (it
 * breaks nearest rounding for |v| below half the smallest code).
 */

export const DEFAULT_BLOCK_SIZE = 256;

/**
 * `bitsandbytes.functional.create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)` (bnb 95f9af3), in float32
 * exactly as torch computes it: for decade k = 0…6, linspace(0.1, 1, F_k) in float32 (F_k = 2^k + 1 signed, 2^(k+1) + 1
 * unsigned; torch's CPU linspace: step = fl((1 − 0.1)/(F − 1)), the first half start + step·i, the second half
 * end − step·(F − 1 − i), each rounded once), midpoints fl(fl(a + b)/2), scaled by fl32(10^(k−6)) (the Python scalar
 * becomes float32), plus their negatives if signed; then 0 and 1.0, zero padding to 256, sorted ascending.
 */
export function createDynamicMap(signed = true): Float32Array {
  const f = Math.fround;
  const data: number[] = [];
  for (let k = 0; k < 7; k++) {
    const items = signed ? 2 ** k + 1 : 2 ** (k + 1) + 1;
    const start = f(0.1);
    const end = f(1);
    const step = f(f(end - start) / (items - 1));
    const half = Math.floor(items / 2);
    const b: number[] = [];
    // step·i is exact in float64 (24-bit × 8-bit), so one fround = torch's single rounding.
    for (let i = 0; i < items; i++) b.push(i < half ? f(start + step * i) : f(end - step * (items - 1 - i)));
    const scale = f(Number(`1e${k - 6}`)); // the literal: JS 10 ** −6 is not correctly rounded
    for (let j = 0; j < items - 1; j++) data.push(f(scale * f(f(b[j]! + b[j + 1]!) / 2)));
    if (signed) for (let j = 0; j < items - 1; j++) data.push(f(-scale * f(f(b[j]! + b[j + 1]!) / 2)));
  }
  data.push(0, 1);
  while (data.length < 256) data.push(0);
  return Float32Array.from(data).sort();
}

const MAPS: { signed?: Float32Array; unsigned?: Float32Array } = {};

/** The cached dynamic map (signed: for values in [−1, 1]; unsigned: [0, 1]). Shared: do not modify it. */
export function dynamicMap(signed: boolean): Float32Array {
  const key = signed ? 'signed' : 'unsigned';
  MAPS[key] ??= createDynamicMap(signed);
  return MAPS[key];
}

/** Index of 0.0 in the dynamic map: 127 (signed) or 0 (unsigned). */
export function zeroCode(signed: boolean): number {
  return signed ? 127 : 0;
}

/** The nearest-code rule above for one float32 value `v` (already divided by absmax). */
export function nearestCode(code: Float32Array, v: number): number {
  let lo = 0;
  for (let step = 128; step >= 1; step >>= 1) if (code[lo + step]! <= v) lo += step;
  const hi = lo === 255 ? 255 : lo + 1;
  return v > Math.fround((code[lo]! + code[hi]!) * 0.5) ? hi : lo;
}

/** max |x| over [start, end) in float32 semantics; NaN if any element is NaN, +Inf if any is ±Inf (and none NaN). */
export function blockAbsmax(x: ArrayLike<number>, start: number, end: number): number {
  let m = 0;
  for (let i = start; i < end; i++) {
    const a = Math.abs(x[i]!);
    if (a > m) m = a;
    else if (Number.isNaN(a)) return Number.NaN;
  }
  return m;
}

/** The code of x given its block's absmax (the special cases of the header included). */
export function quantizeValue(
  code: Float32Array,
  x: number,
  absmax: number,
  zero: number,
  signFix: boolean,
): number {
  if (!(absmax > 0 && absmax < Number.POSITIVE_INFINITY)) return zero; // zero, Inf or NaN block
  const v = Math.fround(x / absmax);
  let c = nearestCode(code, v);
  if (signFix && v < 0 && code[c]! >= 0) c -= 1;
  return c;
}

/** Dequantized value of code c with its block's absmax: code[c]·absmax, NaN for an Inf/NaN block. */
export function dequantizeValue(code: Float32Array, c: number, absmax: number): number {
  return absmax < Number.POSITIVE_INFINITY ? Math.fround(code[c]! * absmax) : Number.NaN;
}

/** Quantizes `x` into packed codes (`packed`, ⌈n/4⌉ words) and per-block `absmax` (⌈n/B⌉), float32 semantics. */
export function quantizeArray(
  x: ArrayLike<number>,
  signed: boolean,
  blockSize: number,
  packed: Int32Array,
  absmax: Float32Array,
  signFix = false,
): void {
  const code = dynamicMap(signed);
  const zero = zeroCode(signed);
  const n = x.length;
  const nBlocks = Math.ceil(n / blockSize);
  packed.fill(0, 0, packedLength(n, 8));
  for (let blk = 0; blk < nBlocks; blk++) {
    const start = blk * blockSize;
    const end = Math.min(n, start + blockSize);
    const a = blockAbsmax(x, start, end);
    absmax[blk] = a;
    for (let i = start; i < end; i++) {
      packed[i >> 2]! |= quantizeValue(code, x[i]!, a, zero, signFix) << (8 * (i & 3));
    }
  }
}

/** The inverse: `out[i] = code[c_i]·absmax[block(i)]` (NaN for Inf/NaN blocks). */
export function dequantizeArray(
  packed: ArrayLike<number>,
  absmax: ArrayLike<number>,
  signed: boolean,
  blockSize: number,
  out: Float32Array,
): void {
  const code = dynamicMap(signed);
  for (let i = 0; i < out.length; i++) {
    const c = (packed[i >> 2]! >>> (8 * (i & 3))) & 0xff;
    out[i] = dequantizeValue(code, c, absmax[Math.floor(i / blockSize)]!);
  }
}

/** Bytes of a quantized tensor of n elements: codes 4⌈n/4⌉ + absmax 4⌈n/B⌉. */
export function quantizedBytes(n: number, blockSize = DEFAULT_BLOCK_SIZE): number {
  return 4 * packedLength(n, 8) + 4 * Math.ceil(n / blockSize);
}

// ---------------------------------------------------------------------------------------------------------------
// WGSL building blocks (also used by fused optimizer kernels in other packages).

/** WGSL: `const CODE_S` / `CODE_U` (the map's float32 bits as u32; exact) and `fn code_s(i)` / `code_u(i)`. */
export function wgslCodeBook(signed: boolean): string {
  const name = signed ? 'S' : 'U';
  const bits = new Uint32Array(dynamicMap(signed).buffer.slice(0));
  const list = Array.from(bits, (b) => `${b}u`).join(', ');
  return `const CODE_${name} = array<u32, 256>(${list});
    fn code_${name.toLowerCase()}(i : i32) -> f32 { return bitcast<f32>(CODE_${name}[i]); }`;
}

/**
 * WGSL helpers, given `wgslCodeBook` for the book(s) named: `is_finite_f(x)` (bit test: WGSL may assume no NaN/Inf),
 * `nan_f()`, `quant_<s|u>(x, absmax, zero, signFix) -> u32` (the nearest-code rule) and `dequant_<s|u>(c, absmax)`.
 */
export function wgslQuantFns(signed: boolean): string {
  const s = signed ? 's' : 'u';
  return `
    fn quant_${s}(x : f32, absmax : f32, zero : i32, signFix : bool) -> u32 {
      if (!(absmax > 0.0) || !is_finite_f(absmax)) { return u32(zero); }
      let v = x / absmax;
      var lo = 0;
      for (var step = 128; step >= 1; step = step / 2) {
        if (code_${s}(lo + step) <= v) { lo = lo + step; }
      }
      let hi = min(lo + 1, 255);
      var c = lo;
      if (v > (code_${s}(lo) + code_${s}(hi)) * 0.5) { c = hi; }
      if (signFix && v < 0.0 && code_${s}(c) >= 0.0) { c = c - 1; }
      return u32(c);
    }
    fn dequant_${s}(c : u32, absmax : f32) -> f32 {
      if (!is_finite_f(absmax)) { return nan_f(); }
      return code_${s}(i32(c)) * absmax;
    }`;
}

/** WGSL: finiteness by bits and a runtime NaN (a constant NaN is a shader-creation error). */
export const WGSL_FLOAT_BITS = `
    fn is_finite_f(x : f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }
    fn is_nan_f(x : f32) -> bool { let b = bitcast<u32>(x) & 0x7fffffffu; return b > 0x7f800000u; }
    fn nan_f() -> f32 { var b = 0x7fc00000u; return bitcast<f32>(b); }`;

/** WGSL: float32 absmax of `expr(i)` over the elements [start, end), with the NaN/Inf rule (NaN wins). */
export function wgslAbsmaxLoop(valueExpr: (i: string) => string): string {
  return `var am = 0.0;
          var sawNaN = false;
          for (var i = start; i < end; i++) {
            let a = abs(${valueExpr('i')});
            if (is_nan_f(a)) { sawNaN = true; } else if (a > am) { am = a; }
          }
          if (sawNaN) { am = nan_f(); }`;
}

// ---------------------------------------------------------------------------------------------------------------
// Kernels.

export interface QuantizeArgs {
  x: tf.Tensor;
  signed: boolean;
  blockSize: number;
  /** bitsandbytes' sign fix for Adam's m (see the header). Default false. */
  signFix?: boolean;
}

export interface Quantized {
  /** int32 [⌈n/4⌉]: four 8-bit codes per word. */
  codes: tf.Tensor1D;
  /** float32 [⌈n/B⌉]: per-block absmax. */
  absmax: tf.Tensor1D;
}

export interface DequantizeArgs {
  codes: tf.Tensor;
  absmax: tf.Tensor;
  shape: number[];
  signed: boolean;
  blockSize: number;
}

type Attrs = { signed: boolean; blockSize: number; signFix?: boolean };

type DequantizeAttrs = Attrs & { shape: number[] };
type QuantizeInputs = { x: tf.TensorInfo };
type DequantizeInputs = { codes: tf.TensorInfo; absmax: tf.TensorInfo };

const quantizeCpu: CpuKernel<QuantizeInputs, Attrs> = ({ inputs: { x }, backend: b, attrs }) => {
  const { signed, blockSize, signFix } = attrs;
  const xs = b.data.get(x.dataId).values;
  const n = xs.length;
  const packed = new Int32Array(packedLength(n, 8));
  const absmax = new Float32Array(Math.ceil(n / blockSize));
  quantizeArray(xs, signed, blockSize, packed, absmax, signFix === true);
  return [
    b.makeTensorInfo([packed.length], 'int32', packed),
    b.makeTensorInfo([absmax.length], 'float32', absmax),
  ];
};

const dequantizeCpu: CpuKernel<DequantizeInputs, DequantizeAttrs> = ({ inputs, backend: b, attrs }) => {
  const { codes, absmax } = inputs;
  const { signed, blockSize, shape } = attrs;
  const out = new Float32Array(tf.util.sizeFromShape(shape));
  dequantizeArray(b.data.get(codes.dataId).values, b.data.get(absmax.dataId).values, signed, blockSize, out);
  return b.makeTensorInfo(shape, 'float32', out);
};

const quantizeWasm: WasmKernel<QuantizeInputs, Attrs> = ({ inputs: { x }, backend: b, attrs }) => {
  const { signed, blockSize, signFix } = attrs;
  const n = tf.util.sizeFromShape(x.shape);
  const packed = b.makeOutput([packedLength(n, 8)], 'int32');
  const absmax = b.makeOutput([Math.ceil(n / blockSize)], 'float32');
  // Views after both allocations (the heap may grow and detach older views).
  quantizeArray(
    b.typedArrayFromHeap(x),
    signed,
    blockSize,
    b.typedArrayFromHeap(packed) as Int32Array,
    b.typedArrayFromHeap(absmax) as Float32Array,
    signFix === true,
  );
  return [packed, absmax];
};

const dequantizeWasm: WasmKernel<DequantizeInputs, DequantizeAttrs> = ({ inputs, backend: b, attrs }) => {
  const { codes, absmax } = inputs;
  const { signed, blockSize, shape } = attrs;
  const out = b.makeOutput(shape, 'float32');
  dequantizeArray(
    b.typedArrayFromHeap(codes),
    b.typedArrayFromHeap(absmax),
    signed,
    blockSize,
    b.typedArrayFromHeap(out) as Float32Array,
  );
  return out;
};

const i32 = (x: number) => ({ type: 'int32' as const, data: [x] });
const flat1 = (t: tf.TensorInfo): tf.TensorInfo => ({
  dataId: t.dataId,
  shape: [tf.util.sizeFromShape(t.shape)],
  dtype: t.dtype,
});

/** Two dispatches: absmax (one thread per block) into a new buffer, then codes (one thread per word). */
const quantizeWebGPU: WebGPUKernel<QuantizeInputs, Attrs> = ({ inputs: { x }, backend: b, attrs }) => {
  const { signed, blockSize, signFix } = attrs;
  const n = tf.util.sizeFromShape(x.shape);
  const s = signed ? 's' : 'u';
  const nBlocks = Math.ceil(n / blockSize);
  const absmax = b.runWebGPUProgram(
    withHelpers(
      flatProgram({
        key: 'quant_absmax',
        size: nBlocks,
        inputs: ['X'],
        uniforms: 'n : i32, blockSize : i32,',
        body: `let start = index * uniforms.blockSize;
          let end = min(uniforms.n, start + uniforms.blockSize);
          ${wgslAbsmaxLoop((i) => `X[${i}]`)}
          result[index] = am;`,
      }),
      WGSL_FLOAT_BITS,
    ),
    [flat1(x)],
    'float32',
    [i32(n), i32(blockSize)],
  );
  const program = flatProgram({
    key: `quant_codes_${s}${signFix ? '_fix' : ''}`,
    size: packedLength(n, 8),
    inputs: ['X', 'A'],
    uniforms: 'n : i32, blockSize : i32,',
    body: `var word = 0u;
          for (var j = 0; j < 4; j++) {
            let i = index * 4 + j;
            if (i < uniforms.n) {
              let c = quant_${s}(X[i], A[i / uniforms.blockSize], ${zeroCode(signed)}, ${signFix ? 'true' : 'false'});
              word = word | (c << (8u * u32(j)));
            }
          }
          result[index] = bitcast<i32>(word);`,
  });
  const codes = b.runWebGPUProgram(
    withHelpers(program, `${wgslCodeBook(signed)}${WGSL_FLOAT_BITS}${wgslQuantFns(signed)}`),
    [flat1(x), absmax],
    'int32',
    [i32(n), i32(blockSize)],
  );
  return [codes, absmax];
};

const dequantizeWebGPU: WebGPUKernel<DequantizeInputs, DequantizeAttrs> = ({ inputs, backend: b, attrs }) => {
  const { codes, absmax } = inputs;
  const { signed, blockSize, shape } = attrs;
  const n = tf.util.sizeFromShape(shape);
  const s = signed ? 's' : 'u';
  const out = b.runWebGPUProgram(
    withHelpers(
      flatProgram({
        key: `dequant_${s}`,
        size: n,
        inputs: ['C', 'A'],
        uniforms: 'blockSize : i32,',
        body: `let c = (bitcast<u32>(C[index / 4]) >> (8u * u32(index % 4))) & 255u;
          result[index] = dequant_${s}(c, A[index / uniforms.blockSize]);`,
      }),
      `${wgslCodeBook(signed)}${WGSL_FLOAT_BITS}${wgslQuantFns(signed)}`,
    ),
    [flat1(codes), flat1(absmax)],
    'float32',
    [i32(blockSize)],
  );
  return { dataId: out.dataId, shape, dtype: 'float32' };
};

/** Prepends module-scope WGSL (constants, functions) to a flat program; the shader key already names the variant. */
export function withHelpers<P extends { getUserCode(): string }>(program: P, helpers: string): P {
  const inner = program.getUserCode.bind(program);
  program.getUserCode = () => `${helpers}\n${inner()}`;
  return program;
}

/**
 * Portable quantization (tfjs ops). Same rule as the native kernels: the binary search is 8 rounds of gather +
 * compare. Codes are packed with `packInts` (its native kernel where there is one: tfjs's int32 ops are exact only
 * on cpu and tensorflow, see `pack.ts`). Holds a few n-sized temporaries.
 */
function quantizeFallback({ x, signed, blockSize, signFix }: QuantizeArgs): Quantized {
  const n = x.size;
  const nBlocks = Math.ceil(n / blockSize);
  return tf.tidy(() => {
    const code = tf.tensor1d(dynamicMap(signed), 'float32');
    const padded = tf.pad(tf.reshape(x, [n]), [[0, nBlocks * blockSize - n]]);
    const blocks = tf.reshape(padded, [nBlocks, blockSize]); // [nBlocks, B]
    const absAll = tf.abs(blocks);
    const hasNaN = tf.any(tf.isNaN(absAll), 1); // [nBlocks]
    const absmax = tf.where(hasNaN, tf.fill([nBlocks], Number.NaN), tf.max(absAll, 1)) as tf.Tensor1D;
    const ok = tf.logicalAnd(tf.greater(absmax, 0), tf.isFinite(absmax)); // [nBlocks]
    const safe = tf.where(ok, absmax, tf.onesLike(absmax));
    const v = tf.div(blocks, tf.reshape(safe, [nBlocks, 1])); // [nBlocks, B]
    let lo: tf.Tensor = tf.zeros(v.shape, 'int32');
    for (let step = 128; step >= 1; step >>= 1) {
      const cand = tf.add(lo, tf.scalar(step, 'int32'));
      lo = tf.where(tf.lessEqual(tf.gather(code, cand), v), cand, lo);
    }
    const hi = tf.minimum(tf.add(lo, tf.scalar(1, 'int32')), tf.scalar(255, 'int32'));
    const mid = tf.mul(tf.add(tf.gather(code, lo), tf.gather(code, hi)), 0.5);
    let c = tf.where(tf.greater(v, mid), hi, lo);
    if (signFix) {
      const flip = tf.logicalAnd(tf.less(v, 0), tf.greaterEqual(tf.gather(code, c), 0));
      c = tf.where(flip, tf.sub(c, tf.scalar(1, 'int32')), c);
    }
    c = tf.where(tf.reshape(ok, [nBlocks, 1]), c, tf.fill(c.shape, zeroCode(signed), 'int32'));
    const flatCodes = tf.slice(tf.reshape(c, [nBlocks * blockSize]), 0, n);
    return { codes: packInts(flatCodes, 8), absmax };
  });
}

function dequantizeFallback({ codes, absmax, shape, signed, blockSize }: DequantizeArgs): tf.Tensor {
  const n = tf.util.sizeFromShape(shape);
  const nBlocks = Math.ceil(n / blockSize);
  return tf.tidy(() => {
    const code = tf.tensor1d(dynamicMap(signed), 'float32');
    const c = unpackInts(codes, n, 8); // [n]
    const vals = tf.pad(tf.gather(code, c), [[0, nBlocks * blockSize - n]]);
    const finite = tf.reshape(tf.isFinite(absmax), [nBlocks, 1]);
    const scaled = tf.mul(tf.reshape(vals, [nBlocks, blockSize]), tf.reshape(absmax, [nBlocks, 1]));
    const out = tf.where(finite, scaled, tf.fill([nBlocks, blockSize], Number.NaN));
    return tf.reshape(tf.slice(tf.reshape(out, [nBlocks * blockSize]), 0, n), shape);
  });
}

export const quantizeKernel = defineKernel<QuantizeArgs, Quantized, QuantizeInputs, Attrs>({
  name: 'KstarQuantize8',
  backends: { cpu: quantizeCpu, wasm: quantizeWasm, webgpu: quantizeWebGPU },
  invoke: ({ x, signed, blockSize, signFix = false }) => ({
    inputs: { x },
    attrs: { signed, blockSize, signFix },
  }),
  finish: ([codes, absmax]) => ({ codes: codes as tf.Tensor1D, absmax: absmax as tf.Tensor1D }),
  fallback: quantizeFallback,
});

export const dequantizeKernel = defineKernel<DequantizeArgs, tf.Tensor, DequantizeInputs, DequantizeAttrs>({
  name: 'KstarDequantize8',
  backends: { cpu: dequantizeCpu, wasm: dequantizeWasm, webgpu: dequantizeWebGPU },
  invoke: ({ codes, absmax, shape, signed, blockSize }) => ({
    inputs: { codes, absmax },
    attrs: { signed, blockSize, shape },
  }),
  finish: ([out]) => out!,
  fallback: dequantizeFallback,
});

export function checkBlockSize(blockSize: unknown, where: string): number {
  if (
    !(typeof blockSize === 'number' && Number.isInteger(blockSize) && blockSize >= 1 && blockSize <= 1 << 20)
  ) {
    throw new InputError(
      `${where}: blockSize = ${String(blockSize)} is invalid: it must be an integer in [1, 1048576] (bitsandbytes uses 256)`,
    );
  }
  return blockSize;
}

export interface QuantizeOptions {
  /** Signed map (values in [−1, 1] after scaling; Adam's m) or unsigned ([0, 1]; Adam's v). Default true. */
  signed?: boolean;
  /** Elements per absmax block. Default 256 (bitsandbytes). */
  blockSize?: number;
  /** bitsandbytes' sign fix (Adam's m): a negative value never gets the +0 code. Default false. */
  signFix?: boolean;
  impl?: 'auto' | 'fallback';
}

/**
 * Block-wise 8-bit quantization of a float32 tensor (any shape, n elements) → `{codes: int32 [⌈n/4⌉], absmax:
 * float32 [⌈n/B⌉]}` (new tensors, the caller owns them). `KstarQuantize8` on cpu, wasm, webgpu; tfjs ops elsewhere.
 */
export function quantizeBlockwise(x: tf.Tensor, options: QuantizeOptions = {}): Quantized {
  const { signed = true, impl, signFix = false } = options;
  const blockSize = checkBlockSize(options.blockSize ?? DEFAULT_BLOCK_SIZE, 'quantizeBlockwise');
  if (x.dtype !== 'float32') {
    throw new ShapeError(`quantizeBlockwise: x has dtype ${x.dtype}, expected float32`);
  }
  if (x.size === 0) return { codes: tf.zeros([0], 'int32'), absmax: tf.zeros([0]) };
  return quantizeKernel.run({ x, signed, blockSize, signFix }, { impl });
}

/** The inverse of `quantizeBlockwise`: a new float32 tensor of `shape`. */
export function dequantizeBlockwise(
  q: { codes: tf.Tensor; absmax: tf.Tensor },
  shape: readonly number[],
  options: QuantizeOptions = {},
): tf.Tensor {
  const { signed = true, impl } = options;
  const blockSize = checkBlockSize(options.blockSize ?? DEFAULT_BLOCK_SIZE, 'dequantizeBlockwise');
  const n = tf.util.sizeFromShape(shape as number[]);
  if (q.codes.dtype !== 'int32' || q.codes.size !== packedLength(n, 8)) {
    throw new ShapeError(
      `dequantizeBlockwise: codes must be int32 [${packedLength(n, 8)}] for shape [${shape}], got ${q.codes.dtype} [${q.codes.shape}]`,
    );
  }
  if (q.absmax.dtype !== 'float32' || q.absmax.size !== Math.ceil(n / blockSize)) {
    throw new ShapeError(
      `dequantizeBlockwise: absmax must be float32 [${Math.ceil(n / blockSize)}] for shape [${shape}] and blockSize ${blockSize}, got ${q.absmax.dtype} [${q.absmax.shape}]`,
    );
  }
  if (n === 0) return tf.zeros(shape as number[]);
  return dequantizeKernel.run(
    { codes: q.codes, absmax: q.absmax, shape: [...shape], signed, blockSize },
    { impl },
  );
}
