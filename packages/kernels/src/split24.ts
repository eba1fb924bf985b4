import { InputError, ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { type CpuKernel, defineKernel, type WasmKernel, type WebGPUKernel } from './define-kernel.ts';
import { packedLength, packInts, unpackInts } from './pack.ts';
import { flatProgram } from './wgsl.ts';

/**
 * 24-bit split weights (FlashOptim's float splitting, arXiv 2602.23349 §6a, with an integer correction code).
 *
 * A float32 w is stored as two parts: `hi`, its bfloat16 rounding (round-to-nearest-even of the top 16 bits; 16
 * bits, two per int32), and `lo`, an int8 correction ρ of the rounding error (four per int32): 3 bytes a value.
 *   expand(hi)          = the bfloat16 value as float32 (what forward and backward read);
 *   reconstruct(hi, lo) = the 24-bit value the optimizer updates.
 *
 * Encoding (on the magnitude bits mag = bits(w) & 0x7fffffff; the sign bit is copied into hi):
 *   h  = (mag + 0x7fff + ((mag >> 16) & 1)) >> 16                bf16 magnitude, round-to-nearest-even
 *   d  = mag − (h << 16)                                         rounding error in float32 ulps, |d| ≤ 32768
 *   ρ  = sign(d) · min(127, ⌊(|d| + 129) / 258⌋)                 nearest multiple of 258 (= 2^16/254)
 *   decode: bits = sign | ((h << 16) + 258·ρ)
 * Since 258·127 = 32766 ≈ 2^15, ρ is e/(ulp_bf16/2)·127 up to rounding — FlashOptim's per-element ULP/2 scale —
 * but counted in float32 bit patterns, so every backend computes it with the same integer arithmetic (bit-exact
 * parity) and no float division by a possibly subnormal scale happens.
 *
 * Error bound (proof). ρ is |d|/258 rounded half up, so |d − 258ρ| ≤ 129 (d = ±32768 gives ρ = ±127, error 2).
 * The reconstructed pattern r = (h << 16) + 258ρ lies on the same side of h << 16 as the input pattern and within
 * 32766 < 2^16 of it, and h << 16 is a multiple of 2^16, so r and mag never straddle a binade start other than
 * h << 16 itself (a multiple of 2^23 only when the mantissa of h is 0, and then both lie below it when d < 0): every
 * one of the ≤ 129 pattern steps between them is one float32 ulp of w's binade. Hence
 *   |reconstruct − w| ≤ 129 · ulp32(w) ≤ 129 · 2^−23 · |w| ≈ 1.54e−5 · |w| < 2^−15 · |w|   (normal w),
 *   |reconstruct − w| ≤ 129 · 2^−149 < 2^−15 · 2^−126                                       (subnormal w),
 * i.e. |reconstruct − w| ≤ 2^−15 · max(|w|, 2^−126) for every finite |w| < 0x7f7f8000 (≈ 3.3961e38, the bf16 overflow
 * threshold). Zeros are exact (−0 keeps its sign).
 *
 * Special values (documented behaviour, identical on every backend):
 * - ±Inf: hi = ±Inf, ρ = 0; expand and reconstruct give ±Inf.
 * - NaN: hi = 0x7fc0 (canonical quiet NaN; sign and payload dropped), ρ = 0; expand and reconstruct give NaN.
 * - |w| ≥ 0x7f7f8000 (finite, would round to a bf16 Inf): hi = ±max finite bf16 (±3.3895e38), ρ saturates at ±127;
 *   the bound above does not hold there (relative error ≤ 2^−8) — weights never come near.
 * The bf16 half of subnormals is a bf16 subnormal (no flush to zero) on cpu, wasm and webgpu (integer code paths).
 */

export interface Split24 {
  /** int32 [⌈n/2⌉]: bf16 halves, two per word (value i in bits 16·(i mod 2)…). */
  hi: tf.Tensor1D;
  /** int32 [⌈n/4⌉]: int8 corrections, four per word (two's complement bytes). */
  lo: tf.Tensor1D;
}

/** Persistent bytes of a split tensor of n values: 4⌈n/2⌉ + 4⌈n/4⌉ (≈ 3n). */
export function split24Bytes(n: number): number {
  return 4 * packedLength(n, 16) + 4 * packedLength(n, 8);
}

/** The magnitude threshold (bit pattern) from which the bf16 half saturates at the max finite bf16. */
export const SPLIT24_SATURATE_BITS = 0x7f7f8000;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 half (16 bits, sign included) and correction ρ ∈ [−127, 127] of one float32 bit pattern `bits` (u32). */
export function splitBits(bits: number): { hi: number; rho: number } {
  const sign = (bits >>> 16) & 0x8000;
  const mag = bits & 0x7fffffff;
  if (mag >= 0x7f800000) return mag === 0x7f800000 ? { hi: sign | 0x7f80, rho: 0 } : { hi: 0x7fc0, rho: 0 };
  const h = mag >= SPLIT24_SATURATE_BITS ? 0x7f7f : (mag + 0x7fff + ((mag >>> 16) & 1)) >>> 16;
  const d = mag - h * 65536;
  const r = Math.min(127, Math.floor((Math.abs(d) + 129) / 258));
  return { hi: sign | h, rho: d < 0 ? -r : r };
}

/** float32 bit pattern (u32) of hi (16 bits) corrected by ρ (pass 0 for the bf16 value). */
export function joinBits(hi: number, rho: number): number {
  const sign = (hi & 0x8000) << 16;
  const h = hi & 0x7fff;
  if (h >= 0x7f80) return (sign | (h << 16)) >>> 0;
  return (sign | (h * 65536 + 258 * rho)) >>> 0;
}

/** The split of one number (rounded to float32 first). */
export function splitValue(x: number): { hi: number; rho: number } {
  f32[0] = x;
  return splitBits(u32[0]!);
}

/** The float32 value of hi + ρ. */
export function joinValue(hi: number, rho: number): number {
  u32[0] = joinBits(hi, rho);
  return f32[0]!;
}

/** Splits float32 `w` (its bit patterns `bits`, u32 view) into packed `hi` [⌈n/2⌉] and `lo` [⌈n/4⌉]. */
export function splitArray(bits: Uint32Array, hi: Int32Array, lo: Int32Array): void {
  const n = bits.length;
  hi.fill(0, 0, packedLength(n, 16));
  lo.fill(0, 0, packedLength(n, 8));
  for (let i = 0; i < n; i++) {
    // splitBits inlined (no object per element: this loop runs over every weight at every update).
    const b = bits[i]!;
    const mag = b & 0x7fffffff;
    let h: number;
    let rho = 0;
    if (mag >= 0x7f800000) {
      h = mag === 0x7f800000 ? ((b >>> 16) & 0x8000) | 0x7f80 : 0x7fc0;
    } else {
      const hm = mag >= SPLIT24_SATURATE_BITS ? 0x7f7f : (mag + 0x7fff + ((mag >>> 16) & 1)) >>> 16;
      const d = mag - hm * 65536;
      if (d >= 0) rho = Math.min(127, ((d + 129) / 258) | 0);
      else rho = -Math.min(127, ((129 - d) / 258) | 0);
      h = ((b >>> 16) & 0x8000) | hm;
    }
    hi[i >> 1]! |= h << (16 * (i & 1));
    lo[i >> 2]! |= (rho & 0xff) << (8 * (i & 3));
  }
}

/** Writes the bit patterns of reconstruct (lo given) or expand (lo null) of n values into `out` (u32 view). */
export function joinArray(
  hi: ArrayLike<number>,
  lo: ArrayLike<number> | null,
  n: number,
  out: Uint32Array,
): void {
  for (let i = 0; i < n; i++) {
    const h = (hi[i >> 1]! >>> (16 * (i & 1))) & 0xffff;
    const rho = lo === null ? 0 : (lo[i >> 2]! << (24 - 8 * (i & 3))) >> 24; // sign-extended byte
    out[i] = joinBits(h, rho);
  }
}

const u32View = (a: Float32Array | Int32Array | Uint8Array, n: number) =>
  new Uint32Array(a.buffer, a.byteOffset, n);

type SplitInputs = { w: tf.TensorInfo };
type NoAttrs = Record<string, never>;
type JoinInputs = { hi: tf.TensorInfo; lo?: tf.TensorInfo };
type JoinAttrs = { n: number };

const splitCpu: CpuKernel<SplitInputs, NoAttrs> = ({ inputs: { w }, backend: b }) => {
  const v = b.data.get(w.dataId).values as Float32Array;
  const hi = new Int32Array(packedLength(v.length, 16));
  const lo = new Int32Array(packedLength(v.length, 8));
  splitArray(u32View(v, v.length), hi, lo);
  return [b.makeTensorInfo([hi.length], 'int32', hi), b.makeTensorInfo([lo.length], 'int32', lo)];
};

const joinCpu: CpuKernel<JoinInputs, JoinAttrs> = ({ inputs: { hi, lo }, backend: b, attrs: { n } }) => {
  const out = new Float32Array(n);
  joinArray(b.data.get(hi.dataId).values, lo ? b.data.get(lo.dataId).values : null, n, u32View(out, n));
  return b.makeTensorInfo([n], 'float32', out);
};

const splitWasm: WasmKernel<SplitInputs, NoAttrs> = ({ inputs: { w }, backend: b }) => {
  const n = tf.util.sizeFromShape(w.shape);
  const hi = b.makeOutput([packedLength(n, 16)], 'int32');
  const lo = b.makeOutput([packedLength(n, 8)], 'int32');
  // Views after the allocations (the heap may grow and detach older views).
  splitArray(
    u32View(b.typedArrayFromHeap(w), n),
    b.typedArrayFromHeap(hi) as Int32Array,
    b.typedArrayFromHeap(lo) as Int32Array,
  );
  return [hi, lo];
};

const joinWasm: WasmKernel<JoinInputs, JoinAttrs> = ({ inputs: { hi, lo }, backend: b, attrs: { n } }) => {
  const out = b.makeOutput([n], 'float32');
  joinArray(
    b.typedArrayFromHeap(hi),
    lo ? b.typedArrayFromHeap(lo) : null,
    n,
    u32View(b.typedArrayFromHeap(out), n),
  );
  return out;
};

/** WGSL of splitBits: returns vec2<u32>(hi16, ρ & 0xff). */
const WGSL_SPLIT = `
fn kstarSplit24(bits : u32) -> vec2<u32> {
  let sgn = (bits >> 16u) & 0x8000u;
  let mag = bits & 0x7fffffffu;
  if (mag >= 0x7f800000u) {
    if (mag == 0x7f800000u) { return vec2<u32>(sgn | 0x7f80u, 0u); }
    return vec2<u32>(0x7fc0u, 0u);
  }
  var h = (mag + 0x7fffu + ((mag >> 16u) & 1u)) >> 16u;
  if (mag >= ${SPLIT24_SATURATE_BITS}u) { h = 0x7f7fu; }
  let d = i32(mag) - i32(h << 16u);
  let r = min(127, (abs(d) + 129) / 258);
  var rho = r;
  if (d < 0) { rho = -r; }
  return vec2<u32>(sgn | h, bitcast<u32>(rho) & 0xffu);
}
fn kstarJoin24(hi : u32, rho : i32) -> u32 {
  let sgn = (hi & 0x8000u) << 16u;
  let h = hi & 0x7fffu;
  if (h >= 0x7f80u) { return sgn | (h << 16u); }
  return sgn | bitcast<u32>(i32(h << 16u) + 258 * rho);
}
`;

/** Prepends the helper functions to a flat program's code (they must sit outside `main`). */
function withSplitHelpers(p: ReturnType<typeof flatProgram>): ReturnType<typeof flatProgram> {
  const user = p.getUserCode;
  p.getUserCode = () => `${WGSL_SPLIT}\n${user()}`;
  return p;
}

const i32u = (x: number) => ({ type: 'int32' as const, data: [x] });

/** Two dispatches, one per output (Dawn forbids two storage outputs in these flat programs): hi words, lo words. */
const splitWebGPU: WebGPUKernel<SplitInputs, NoAttrs> = ({ inputs: { w }, backend: b }) => {
  const n = tf.util.sizeFromShape(w.shape);
  const flatW = { dataId: w.dataId, shape: [n], dtype: w.dtype };
  const hi = b.runWebGPUProgram(
    withSplitHelpers(
      flatProgram({
        key: 'split24hi',
        size: packedLength(n, 16),
        inputs: ['W'],
        uniforms: 'n : i32,',
        body: `var word = 0u;
          for (var j = 0; j < 2; j++) {
            let i = index * 2 + j;
            if (i < uniforms.n) { word = word | (kstarSplit24(bitcast<u32>(W[i])).x << (16u * u32(j))); }
          }
          result[index] = bitcast<i32>(word);`,
      }),
    ),
    [flatW],
    'int32',
    [i32u(n)],
  );
  const lo = b.runWebGPUProgram(
    withSplitHelpers(
      flatProgram({
        key: 'split24lo',
        size: packedLength(n, 8),
        inputs: ['W'],
        uniforms: 'n : i32,',
        body: `var word = 0u;
          for (var j = 0; j < 4; j++) {
            let i = index * 4 + j;
            if (i < uniforms.n) { word = word | (kstarSplit24(bitcast<u32>(W[i])).y << (8u * u32(j))); }
          }
          result[index] = bitcast<i32>(word);`,
      }),
    ),
    [flatW],
    'int32',
    [i32u(n)],
  );
  return [hi, lo];
};

const joinWebGPU: WebGPUKernel<JoinInputs, JoinAttrs> = ({
  inputs: { hi, lo },
  backend: b,
  attrs: { n },
}) => {
  const flatOf = (t: tf.TensorInfo) => ({
    dataId: t.dataId,
    shape: [tf.util.sizeFromShape(t.shape)],
    dtype: t.dtype,
  });
  const rho = lo ? `(bitcast<i32>(bitcast<u32>(L[index / 4]) << (24u - 8u * u32(index % 4))) >> 24u)` : '0';
  return b.runWebGPUProgram(
    withSplitHelpers(
      flatProgram({
        key: lo ? 'reconstruct24' : 'expand24',
        size: n,
        inputs: lo ? ['H', 'L'] : ['H'],
        body: `let h = (bitcast<u32>(H[index / 2]) >> (16u * u32(index % 2))) & 0xffffu;
          result[index] = bitcast<f32>(kstarJoin24(h, ${rho}));`,
      }),
    ),
    lo ? [flatOf(hi), flatOf(lo)] : [flatOf(hi)],
    'float32',
  );
};

export interface Split24Args {
  w: tf.Tensor;
}
export interface Join24Args {
  hi: tf.Tensor;
  /** Absent: expand (the bf16 value). */
  lo?: tf.Tensor;
  n: number;
}

const pow2 = (e: tf.Tensor) => tf.pow(tf.scalar(2), e);

/**
 * Portable split (tfjs float ops + `packInts`), no bit casts: with Eb = max(1, ⌊log2|w|⌋ + 127) (corrected so that
 * M = |w| / 2^(Eb−150) is an integer in [2^23, 2^24), or [0, 2^23) for subnormals), hq = round-half-even(M / 2^16),
 * d = M − 2^16·hq, bf16 magnitude = 128·Eb + hq − 128 (hq = 256 carries into the exponent by itself). Every
 * intermediate is an integer below 2^24, exact in float32. EXACT where tfjs's float ops keep subnormals and pow(2, k)
 * is exact (cpu, wasm); TensorFlow (tfjs-node) flushes subnormals to zero.
 */
export function split24Ops({ w }: Split24Args): Split24 {
  return tf.tidy(() => {
    const x = tf.reshape(w, [w.size]); // [n]
    const a = tf.abs(x);
    const nan = tf.isNaN(x);
    const inf = tf.isInf(x);
    const finiteA = tf.where(tf.logicalOr(nan, inf), tf.zerosLike(a), a);
    let eb = tf.maximum(tf.add(tf.floor(tf.div(tf.log(finiteA), Math.LN2)), 127), 1); // may be off by one
    for (let k = 0; k < 2; k++) {
      const m = tf.div(finiteA, pow2(tf.sub(eb, 150)));
      eb = tf.add(
        eb,
        tf.sub(
          tf.cast(tf.greaterEqual(m, 2 ** 24), 'float32'),
          tf.cast(tf.logicalAnd(tf.less(m, 2 ** 23), tf.greater(eb, 1)), 'float32'),
        ),
      );
    }
    const m = tf.div(finiteA, pow2(tf.sub(eb, 150))); // integer in [0, 2^24)
    let hq = tf.round(tf.div(m, 65536)); // banker's rounding = round-to-nearest-even
    const saturate = tf.logicalAnd(tf.equal(eb, 254), tf.equal(hq, 256));
    hq = tf.where(saturate, tf.fill([w.size], 255), hq);
    const d = tf.sub(m, tf.mul(hq, 65536)); // [n], |d| ≤ 65535
    const r = tf.minimum(tf.floor(tf.div(tf.add(tf.abs(d), 129), 258)), 127);
    let rho = tf.mul(tf.sign(d), r);
    let h = tf.add(tf.mul(eb, 128), tf.sub(hq, 128));
    h = tf.where(inf, tf.fill([w.size], 0x7f80), h);
    // Negative, including −0 (1/−0 = −Inf); NaN's sign is dropped.
    const neg = tf.logicalOr(
      tf.less(x, 0),
      tf.logicalAnd(tf.equal(x, 0), tf.less(tf.div(tf.scalar(1), x), 0)),
    );
    h = tf.add(h, tf.mul(tf.cast(neg, 'float32'), 0x8000));
    h = tf.where(nan, tf.fill([w.size], 0x7fc0), h);
    rho = tf.where(tf.logicalOr(nan, inf), tf.zerosLike(rho), rho);
    return {
      hi: packInts(tf.cast(h, 'int32'), 16),
      lo: packInts(tf.cast(rho, 'int32'), 8),
    };
  });
}

/**
 * Portable reconstruct/expand: unpack, then value = (2^23 + m)·2^(Eb−150) (Eb ≥ 1) or m·2^−149 (Eb = 0) with
 * Eb, m the exponent and mantissa of the pattern (h << 16) + 258ρ, found without forming it: the pattern drops one
 * binade exactly when h's mantissa is 0 and ρ < 0. Same exactness caveats as `split24Ops`.
 */
export function join24Ops({ hi, lo, n }: Join24Args): tf.Tensor1D {
  return tf.tidy(() => {
    const h16 = tf.cast(unpackInts(hi, n, 16), 'float32'); // [n] 0 … 65535
    const q = lo
      ? tf.mul(
          tf.cast(tf.sub(tf.mod(tf.add(unpackInts(lo, n, 8), 128), 256), 128), 'float32'), // signed byte
          258,
        )
      : tf.zeros([n]);
    const neg = tf.greaterEqual(h16, 0x8000);
    const hm = tf.where(neg, tf.sub(h16, 0x8000), h16);
    const ebH = tf.floor(tf.div(hm, 128));
    const mant = tf.sub(hm, tf.mul(ebH, 128));
    const down = tf.logicalAnd(tf.equal(mant, 0), tf.less(q, 0));
    const eb = tf.sub(ebH, tf.cast(down, 'float32'));
    const m = tf.where(down, tf.add(q, 2 ** 23), tf.add(tf.mul(mant, 65536), q));
    const normal = tf.mul(tf.add(m, 2 ** 23), pow2(tf.sub(eb, 150)));
    const sub = tf.mul(m, tf.scalar(2 ** -149));
    let v = tf.where(tf.greaterEqual(eb, 1), normal, sub);
    const special = tf.greaterEqual(hm, 0x7f80);
    v = tf.where(
      special,
      tf.where(tf.equal(hm, 0x7f80), tf.fill([n], Infinity), tf.fill([n], Number.NaN)),
      v,
    );
    // −0 for a negative zero: multiply by −1 (keeps NaN as NaN).
    return tf.where(neg, tf.neg(v), v) as tf.Tensor1D;
  });
}

export const split24Kernel = defineKernel<Split24Args, Split24, SplitInputs, NoAttrs>({
  name: 'KstarSplit24',
  backends: { cpu: splitCpu, wasm: splitWasm, webgpu: splitWebGPU },
  invoke: ({ w }) => ({ inputs: { w } }),
  finish: (outputs) => ({ hi: outputs[0] as tf.Tensor1D, lo: outputs[1] as tf.Tensor1D }),
  fallback: split24Ops,
});

export const join24Kernel = defineKernel<Join24Args, tf.Tensor1D, JoinInputs, JoinAttrs>({
  name: 'KstarJoin24',
  backends: { cpu: joinCpu, wasm: joinWasm, webgpu: joinWebGPU },
  invoke: ({ hi, lo, n }) => ({ inputs: lo ? { hi, lo } : ({ hi } as tf.NamedTensorMap), attrs: { n } }),
  finish: (outputs) => outputs[0] as tf.Tensor1D,
  fallback: join24Ops,
});

type ImplOption = { impl?: 'auto' | 'fallback' };

/** Splits float32 `w` (any shape, n elements) into packed bf16 halves and int8 corrections (3 bytes a value). */
export function split24(w: tf.Tensor, options?: ImplOption): Split24 {
  if (w.dtype !== 'float32') {
    throw new ShapeError(`split24: w has dtype ${w.dtype}, expected float32`);
  }
  if (w.size === 0) return { hi: tf.zeros([0], 'int32'), lo: tf.zeros([0], 'int32') };
  return split24Kernel.run({ w }, options);
}

function checkParts(where: string, hi: tf.Tensor, lo: tf.Tensor | undefined, n: number): void {
  if (!(Number.isInteger(n) && n >= 0)) {
    throw new InputError(`${where}: n = ${n} is invalid: it must be a non-negative integer`);
  }
  if (hi.dtype !== 'int32' || hi.size !== packedLength(n, 16)) {
    throw new ShapeError(
      `${where}: hi is ${hi.dtype} [${hi.shape}], expected int32 [${packedLength(n, 16)}] for n = ${n}: pass split24(w).hi`,
    );
  }
  if (lo && (lo.dtype !== 'int32' || lo.size !== packedLength(n, 8))) {
    throw new ShapeError(
      `${where}: lo is ${lo.dtype} [${lo.shape}], expected int32 [${packedLength(n, 8)}] for n = ${n}: pass split24(w).lo`,
    );
  }
}

/** The 24-bit value (float32 [n]) of split parts: within 2^−15·max(|w|, 2^−126) of the original w. */
export function reconstruct24(hi: tf.Tensor, lo: tf.Tensor, n: number, options?: ImplOption): tf.Tensor1D {
  checkParts('reconstruct24', hi, lo, n);
  if (n === 0) return tf.zeros([0]);
  return join24Kernel.run({ hi, lo, n }, options);
}

/** The bf16 value of split parts as float32 [n] (what forward and backward read). */
export function expand24(hi: tf.Tensor, n: number, options?: ImplOption): tf.Tensor1D {
  checkParts('expand24', hi, undefined, n);
  if (n === 0) return tf.zeros([0]);
  return join24Kernel.run({ hi, n }, options);
}
