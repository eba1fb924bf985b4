import { InputError, ShapeError } from '@kstar/core';
import {
  type AdamStepConstants,
  type AdamStepHyper,
  adamStepConstants,
  blockAbsmax,
  type CpuKernel,
  canWriteInPlace,
  checkShapeOfParam,
  defineKernel,
  dequantizeBlockwise,
  dequantizeValue,
  dynamicMap,
  type FlatProgram,
  inPlaceOutput,
  invalidateWasmCaches,
  quantizeBlockwise,
  quantizeValue,
  type WasmKernel,
  type WebGPUKernel,
  WGSL_FLOAT_BITS,
  wgslAbsmaxLoop,
  wgslCodeBook,
  wgslQuantFns,
  withHelpers,
} from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';

/**
 * The fused 8-bit Adam step (`KstarAdam8bit`) for one parameter p of n elements whose moments live as block-wise
 * 8-bit codes: m with the signed dynamic map (`c1` int32 [⌈n/4⌉], `a1` float32 [⌈n/B⌉]), v with the unsigned map
 * (`c2`, `a2`). Per block of B elements (bitsandbytes `kOptimizerStatic8bit2StateBlockwise`, fp32 math):
 *
 *   m ← code_s[c1]·a1 ;  v ← code_u[c2]·a2                          dequantize
 *   m ← β1·m + (1−β1)·g ;  v ← β2·v + (1−β2)·g²                     (rounded to float32)
 *   p ← p·(1 − lr·λ) − lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps)       decay BEFORE the update (torch AdamW order)
 *   a1, a2 ← max |m|, max |v| over the block ; c1, c2 ← nearest codes (m with bnb's sign fix)
 *   g NaN/±Inf at an element: its m and v become 0 and its p is not changed (bnb CUDA)
 *
 * The update uses the float32 states BEFORE requantization (bnb keeps them in registers). cpu and wasm: JS loops
 * (float64 arithmetic, states rounded to float32, one block of scratch), all five buffers written in place.
 * webgpu: six dispatches, each writing one buffer (Dawn forbids a buffer bound as input and output): new absmax per
 * block into a [2·⌈n/B⌉] temporary, p, c1, c2 (each thread re-derives the new states from the old codes), then a1,
 * a2. The portable fallback (tfjs ops + `assign`) dequantizes, updates and requantizes with the quantize kernels.
 */

/** One step's hyper-parameters: Adam's (1-based `step`, for bias correction) and the quantization block size. */
export type Adam8bitStepHyper = AdamStepHyper & { blockSize: number };

export interface Adam8bitArgs {
  param: tf.Variable;
  grad: tf.Tensor;
  /** m codes, int32 [⌈n/4⌉]. */
  c1: tf.Variable;
  /** m absmax, float32 [⌈n/B⌉]. */
  a1: tf.Variable;
  c2: tf.Variable;
  a2: tf.Variable;
  hp: Adam8bitStepHyper;
}

/** Adam's per-step constants and the quantization block size. */
type Consts = AdamStepConstants & { blockSize: number };

function constants(hp: Adam8bitStepHyper): Consts {
  return { ...adamStepConstants(hp), blockSize: hp.blockSize };
}

type Inputs = Record<'param' | 'grad' | 'c1' | 'a1' | 'c2' | 'a2', tf.TensorInfo>;

const byteOf = (w: number, i: number) => (w >>> (8 * (i & 3))) & 0xff;
const setByte = (words: Int32Array, i: number, c: number) => {
  const sh = 8 * (i & 3);
  words[i >> 2] = (words[i >> 2]! & ~(0xff << sh)) | (c << sh);
};

/** The shared cpu/wasm step, in place, one block at a time (scratch: 2 × B float32). */
export function adam8bitArrays(
  p: Float32Array,
  g: Float32Array,
  c1: Int32Array,
  a1: Float32Array,
  c2: Int32Array,
  a2: Float32Array,
  k: Consts,
): void {
  const f = Math.fround;
  const qs = dynamicMap(true);
  const qu = dynamicMap(false);
  const n = p.length;
  const B = k.blockSize;
  const ms = new Float32Array(Math.min(B, n));
  const vs = new Float32Array(Math.min(B, n));
  const nBlocks = Math.ceil(n / B);
  for (let blk = 0; blk < nBlocks; blk++) {
    const start = blk * B;
    const len = Math.min(n, start + B) - start;
    const am = a1[blk]!;
    const av = a2[blk]!;
    for (let j = 0; j < len; j++) {
      const i = start + j;
      const gi = g[i]!;
      if (!Number.isFinite(gi)) {
        ms[j] = 0;
        vs[j] = 0;
        continue;
      }
      const m = f(k.beta1 * dequantizeValue(qs, byteOf(c1[i >> 2]!, i), am) + k.oneMinusBeta1 * gi);
      const v = f(k.beta2 * dequantizeValue(qu, byteOf(c2[i >> 2]!, i), av) + k.oneMinusBeta2 * gi * gi);
      ms[j] = m;
      vs[j] = v;
      p[i] = p[i]! * k.decay - k.stepSize * (m / (Math.sqrt(v) / k.sqrtBc2 + k.eps));
    }
    const nm = blockAbsmax(ms, 0, len);
    const nv = blockAbsmax(vs, 0, len);
    a1[blk] = nm;
    a2[blk] = nv;
    for (let j = 0; j < len; j++) {
      setByte(c1, start + j, quantizeValue(qs, ms[j]!, nm, 127, true));
      setByte(c2, start + j, quantizeValue(qu, vs[j]!, nv, 0, false));
    }
  }
}

const ORDER = ['param', 'c1', 'a1', 'c2', 'a2'] as const;

const adam8bitCpu: CpuKernel<Inputs, Consts> = ({ inputs: ins, backend: b, attrs }) => {
  const arr = (t: tf.TensorInfo) => b.data.get(t.dataId).values;
  adam8bitArrays(
    arr(ins.param) as Float32Array,
    arr(ins.grad) as Float32Array,
    arr(ins.c1) as Int32Array,
    arr(ins.a1) as Float32Array,
    arr(ins.c2) as Int32Array,
    arr(ins.a2) as Float32Array,
    attrs,
  );
  return ORDER.map((k) => inPlaceOutput(b, ins[k]));
};

const adam8bitWasm: WasmKernel<Inputs, Consts> = ({ inputs: ins, backend: b, attrs }) => {
  // Nothing is allocated on the wasm heap here, so the views stay valid.
  const view = (t: tf.TensorInfo) => b.typedArrayFromHeap(t);
  adam8bitArrays(
    view(ins.param) as Float32Array,
    view(ins.grad) as Float32Array,
    view(ins.c1) as Int32Array,
    view(ins.a1) as Float32Array,
    view(ins.c2) as Int32Array,
    view(ins.a2) as Float32Array,
    attrs,
  );
  // The wasm backend caches packed weights per tensor id: drop them for every buffer written.
  for (const k of ORDER) invalidateWasmCaches(b, ins[k]);
  return ORDER.map((k) => inPlaceOutput(b, ins[k]));
};

type Uniform = { type: 'float32' | 'int32'; data: number[] };
const f32u = (x: number): Uniform => ({ type: 'float32', data: [x] });
const i32u = (x: number): Uniform => ({ type: 'int32', data: [x] });
const flat1 = (t: tf.TensorInfo): tf.TensorInfo => ({
  dataId: t.dataId,
  shape: [tf.util.sizeFromShape(t.shape)],
  dtype: t.dtype,
});

const UNIFORMS = 'n : i32, blockSize : i32, beta1 : f32, omb1 : f32, beta2 : f32, omb2 : f32,';

/** WGSL: the new float32 states of element i from its OLD codes and absmax (identical in every dispatch). */
const NEW_STATES = `
    fn code_byte(w : i32, i : i32) -> u32 { return (bitcast<u32>(w) >> (8u * u32(i % 4))) & 255u; }
    fn new_m(w : i32, i : i32, am : f32, g : f32) -> f32 {
      if (!is_finite_f(g)) { return 0.0; }
      return uniforms.beta1 * dequant_s(code_byte(w, i), am) + uniforms.omb1 * g;
    }
    fn new_v(w : i32, i : i32, av : f32, g : f32) -> f32 {
      if (!is_finite_f(g)) { return 0.0; }
      return uniforms.beta2 * dequant_u(code_byte(w, i), av) + uniforms.omb2 * g * g;
    }`;

const HELPERS = `${wgslCodeBook(true)}${wgslCodeBook(false)}${WGSL_FLOAT_BITS}${wgslQuantFns(true)}${wgslQuantFns(false)}${NEW_STATES}`;

function program(key: string, size: number, inputs: string[], uniforms: string, body: string): FlatProgram {
  const prog: FlatProgram = {
    variableNames: inputs,
    outputShape: [size],
    shaderKey: `kstar_${key}`,
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(size / 128), 1, 1],
    workgroupSize: [128, 1, 1],
    size: true,
    uniforms,
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${body}
        }
      }`,
  };
  return withHelpers(prog, HELPERS);
}

const adam8bitWebGPU: WebGPUKernel<Inputs, Consts> = ({ inputs: ins, backend: b, attrs: k }) => {
  const n = tf.util.sizeFromShape(ins.param.shape);
  const B = k.blockSize;
  const nBlocks = Math.ceil(n / B);
  const words = Math.ceil(n / 4);
  const base: Uniform[] = [
    i32u(n),
    i32u(B),
    f32u(k.beta1),
    f32u(k.oneMinusBeta1),
    f32u(k.beta2),
    f32u(k.oneMinusBeta2),
  ];
  const [P, G, C1, A1, C2, A2] = [ins.param, ins.grad, ins.c1, ins.a1, ins.c2, ins.a2].map(flat1) as [
    tf.TensorInfo,
    tf.TensorInfo,
    tf.TensorInfo,
    tf.TensorInfo,
    tf.TensorInfo,
    tf.TensorInfo,
  ];
  // 1. New absmax of m (even entries) and v (odd entries) per block, into a temporary.
  const T = b.runWebGPUProgram(
    program(
      'adam8bit_absmax',
      2 * nBlocks,
      ['G', 'C1', 'A1', 'C2', 'A2'],
      UNIFORMS,
      `let blk = index / 2;
          let start = blk * uniforms.blockSize;
          let end = min(uniforms.n, start + uniforms.blockSize);
          let isV = (index % 2) == 1;
          ${wgslAbsmaxLoop((i) => `select(new_m(C1[${i} / 4], ${i}, A1[blk], G[${i}]), new_v(C2[${i} / 4], ${i}, A2[blk], G[${i}]), isV)`)}
          result[index] = am;`,
    ),
    [G, C1, A1, C2, A2],
    'float32',
    base,
  );
  // 2. p in place (reads the OLD codes).
  b.runWebGPUProgram(
    program(
      'adam8bit_p',
      n,
      ['G', 'C1', 'A1', 'C2', 'A2'],
      `${UNIFORMS} decay : f32, stepSize : f32, sqrtBc2 : f32, eps : f32,`,
      `let g = G[index];
          if (is_finite_f(g)) {
            let blk = index / uniforms.blockSize;
            let m = new_m(C1[index / 4], index, A1[blk], g);
            let v = new_v(C2[index / 4], index, A2[blk], g);
            result[index] = result[index] * uniforms.decay - uniforms.stepSize * (m / (sqrt(v) / uniforms.sqrtBc2 + uniforms.eps));
          }`,
    ),
    [G, C1, A1, C2, A2],
    'float32',
    [...base, f32u(k.decay), f32u(k.stepSize), f32u(k.sqrtBc2), f32u(k.eps)],
    P,
  );
  // 3./4. codes in place, one thread per word: old codes from `result`, new absmax from T.
  const codes = (which: 'm' | 'v') =>
    program(
      `adam8bit_codes_${which}`,
      words,
      ['G', 'A', 'T'],
      UNIFORMS,
      `let old = result[index];
          var word = 0u;
          for (var j = 0; j < 4; j++) {
            let i = index * 4 + j;
            if (i < uniforms.n) {
              let blk = i / uniforms.blockSize;
              ${
                which === 'm'
                  ? 'let c = quant_s(new_m(old, i, A[blk], G[i]), T[2 * blk], 127, true);'
                  : 'let c = quant_u(new_v(old, i, A[blk], G[i]), T[2 * blk + 1], 0, false);'
              }
              word = word | (c << (8u * u32(j)));
            }
          }
          result[index] = bitcast<i32>(word);`,
    );
  b.runWebGPUProgram(codes('m'), [G, A1, T], 'int32', base, C1);
  b.runWebGPUProgram(codes('v'), [G, A2, T], 'int32', base, C2);
  // 5./6. the new absmax.
  const copy = (odd: number) =>
    program(
      `adam8bit_copy${odd}`,
      nBlocks,
      ['T'],
      `${UNIFORMS} odd : i32,`,
      'result[index] = T[2 * index + uniforms.odd];',
    );
  b.runWebGPUProgram(copy(0), [T], 'float32', [...base, i32u(0)], A1);
  b.runWebGPUProgram(copy(1), [T], 'float32', [...base, i32u(1)], A2);
  b.disposeData(T.dataId);
  // CPU copies cached by earlier reads are stale now.
  for (const key of ORDER) b.tensorMap.get(ins[key].dataId).values = null;
  return ORDER.map((key) => inPlaceOutput(b, ins[key]));
};

/** Portable path: dequantize (kernels), update with tfjs ops, requantize (kernels), `assign` everything. */
function adam8bitFallback({ param, grad, c1, a1, c2, a2, hp }: Adam8bitArgs): void {
  const k = constants(hp);
  const shape = param.shape;
  const opts = { blockSize: hp.blockSize, impl: 'fallback' as const };
  tf.tidy(() => {
    const finite = tf.isFinite(grad);
    const g = tf.where(finite, grad, tf.zerosLike(grad));
    const mOld = dequantizeBlockwise({ codes: c1, absmax: a1 }, shape, { ...opts, signed: true });
    const vOld = dequantizeBlockwise({ codes: c2, absmax: a2 }, shape, { ...opts, signed: false });
    const zero = tf.zerosLike(g);
    const m = tf.where(finite, tf.add(tf.mul(mOld, k.beta1), tf.mul(g, k.oneMinusBeta1)), zero);
    const v = tf.where(finite, tf.add(tf.mul(vOld, k.beta2), tf.mul(tf.square(g), k.oneMinusBeta2)), zero);
    const denom = tf.add(tf.div(tf.sqrt(v), k.sqrtBc2), k.eps);
    const pNew = tf.sub(tf.mul(param, k.decay), tf.mul(tf.div(m, denom), k.stepSize));
    param.assign(tf.where(finite, pNew, param));
    const qm = quantizeBlockwise(m, { ...opts, signed: true, signFix: true });
    const qv = quantizeBlockwise(v, { ...opts, signed: false });
    c1.assign(qm.codes);
    a1.assign(qm.absmax);
    c2.assign(qv.codes);
    a2.assign(qv.absmax);
  });
}

/** In place only when nothing else holds any of the five buffers and none is shared with another. */
function canRunInPlace({ param, grad, c1, a1, c2, a2 }: Adam8bitArgs, backend: tf.KernelBackend): boolean {
  return canWriteInPlace([param, c1, a1, c2, a2], [grad], backend);
}

export const adam8bitKernel = defineKernel<Adam8bitArgs, void, Inputs, Consts>({
  name: 'KstarAdam8bit',
  backends: { cpu: adam8bitCpu, wasm: adam8bitWasm, webgpu: adam8bitWebGPU },
  invoke: ({ param, grad, c1, a1, c2, a2, hp }) => ({
    inputs: { param, grad, c1, a1, c2, a2 },
    attrs: constants(hp),
  }),
  finish: (outputs) => tf.dispose(outputs),
  fallback: adam8bitFallback,
  canRunNative: canRunInPlace,
});

function validate({ param, grad, c1, a1, c2, a2, hp }: Adam8bitArgs): void {
  const n = param.size;
  checkShapeOfParam('adam8bitUpdate', param, { grad });
  if (param.dtype !== 'float32' || grad.dtype !== 'float32') {
    throw new ShapeError(
      `adam8bitUpdate: param and grad must be float32, got ${param.dtype} and ${grad.dtype}`,
    );
  }
  const words = Math.ceil(n / 4);
  const blocks = Math.ceil(n / hp.blockSize);
  for (const [name, t, dtype, size] of [
    ['c1', c1, 'int32', words],
    ['c2', c2, 'int32', words],
    ['a1', a1, 'float32', blocks],
    ['a2', a2, 'float32', blocks],
  ] as const) {
    if (t.dtype !== dtype || t.size !== size) {
      throw new ShapeError(
        `adam8bitUpdate: ${name} of '${param.name}' must be ${dtype} [${size}] (n = ${n}, blockSize = ${hp.blockSize}), got ${t.dtype} [${t.shape}]`,
      );
    }
  }
  if (!(Number.isInteger(hp.step) && hp.step >= 1)) {
    throw new InputError(
      `adam8bitUpdate: hp.step = ${hp.step} is invalid: it must be an integer ≥ 1 (1-based)`,
    );
  }
}

/**
 * One fused 8-bit Adam step (see the header), everything in place on cpu, wasm and webgpu (`KstarAdam8bit`); tfjs
 * ops + `assign` elsewhere, with `impl: 'fallback'`, or when a buffer is shared (a clone of p is alive).
 */
export function adam8bitUpdate(args: Adam8bitArgs, options?: { impl?: 'auto' | 'fallback' }): void {
  validate(args);
  if (args.param.size === 0) return;
  adam8bitKernel.run(args, options);
}
