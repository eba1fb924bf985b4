import { InputError, ShapeError } from '@kstar/core';
import {
  type CpuKernel,
  canWriteInPlace,
  defineKernel,
  type FlatProgram,
  factoredDims,
  factoredMomentArrays,
  factoredMomentOps,
  factoredMomentWebGPU,
  factoredRsqrtOps,
  flat,
  flatProgram,
  inPlaceOutput,
  invalidateWasmCaches,
  updateScaleWebGPU,
  type WasmKernel,
  type WebGPUKernel,
} from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { checkParamGrad, NO_CLIP } from './lomo-kernel.ts';
import { type AdaLomoStateKey, adalomoStateShapes } from './state.ts';

/**
 * The fused AdaLomo update `KstarAdaLomo` (`lomo_optim.AdaLomo.fuse_update`), for a parameter p of shape
 * [...batch(B), m, n] (rank ≥ 2, factored over the last two dims) or a vector (rank ≤ 1):
 *
 *   g'    ← clamp(g, ±clipValue) · gradScale                         (both optional; gradScale: global-norm coef)
 *   u     ← g'² + eps1
 *   R[b,i] ← β̂·R[b,i] + (1−β̂)·mean_j u[b,i,j]      C[b,j] ← β̂·C[b,j] + (1−β̂)·mean_i u[b,i,j]
 *   U     ← g' · rsqrt(R[b,i] / mean_i R[b,i]) · rsqrt(C[b,j])       (vector: V ← β̂·V + (1−β̂)·u; U ← g'·rsqrt(V))
 *   U     ← U / max(1, RMS(U) / clipThreshold)
 *   lr_p  ← lr · max(eps2, RMS(p))                                   RMS(p) BEFORE the update
 *   p     ← p · (1 − lr_p·weightDecay) − lr_p · U
 *
 * with β̂ = 1 − t^decayRate (0 at t = 1). Native kernels (cpu, wasm: float64 JS loops over the float32 buffers;
 * webgpu: WGSL) write p and the state IN PLACE and never materialise U (RMS(U) recomputes it from g, R, C or V;
 * the final pass recomputes it again): no parameter-sized temporary. The fallback (tfjs ops + `assign`) holds up
 * to 3 parameter-sized temporaries.
 */
export interface AdaLomoStepHyper {
  lr: number;
  /** β̂2_t = 1 − t^decayRate. */
  beta2t: number;
  eps1: number;
  eps2: number;
  clipThreshold: number;
  weightDecay: number;
  gradScale: number;
  clipValue: number | null;
}

export type AdaLomoStateVars = Partial<Record<AdaLomoStateKey, tf.Variable>>;

export interface AdaLomoKernelArgs {
  param: tf.Variable;
  grad: tf.Tensor;
  state: AdaLomoStateVars;
  hp: AdaLomoStepHyper;
}

interface Attrs {
  lr: number;
  beta2t: number;
  eps1: number;
  eps2: number;
  clip: number;
  weightDecay: number;
  gscale: number;
  gclip: number;
}

const attrsOf = (hp: AdaLomoStepHyper): Attrs => ({
  lr: hp.lr,
  beta2t: hp.beta2t,
  eps1: hp.eps1,
  eps2: hp.eps2,
  clip: hp.clipThreshold,
  weightDecay: hp.weightDecay,
  gscale: hp.gradScale,
  gclip: hp.clipValue ?? NO_CLIP,
});

type Inputs = {
  param: tf.TensorInfo;
  grad: tf.TensorInfo;
  row?: tf.TensorInfo;
  col?: tf.TensorInfo;
  v?: tf.TensorInfo;
};

interface Arrays {
  p: Float32Array;
  g: Float32Array;
  row?: Float32Array;
  col?: Float32Array;
  v?: Float32Array;
}

/** The shared update of the cpu and wasm kernels: float64 arithmetic, float32 storage, in place. */
function updateArrays(a: Arrays, shape: readonly number[], c: Attrs): void {
  const { p, g } = a;
  const N = p.length;
  const b2 = c.beta2t;
  const omb2 = 1 - c.beta2t;
  const { gclip, gscale } = c;
  const gt = (x: number): number => Math.min(gclip, Math.max(x, -gclip)) * gscale;
  let sp = 0;
  for (let i = 0; i < N; i++) sp += p[i]! * p[i]!;
  const alpha = c.lr * Math.max(c.eps2, Math.sqrt(sp / N));
  let forEachU: (f: (i: number, u: number) => void) => void;
  if (a.row != null && a.col != null) {
    const { B, m, n } = factoredDims(shape);
    const f = factoredMomentArrays(g, a.row, a.col, { B, m, n }, b2, c.eps1, gt);
    forEachU = (fn) => {
      for (let r = 0; r < B * m; r++) {
        const cb = Math.floor(r / m) * n;
        const base = r * n;
        for (let j = 0; j < n; j++) fn(base + j, gt(g[base + j]!) * f.row[r]! * f.col[cb + j]!);
      }
    };
  } else {
    const v = a.v!;
    for (let i = 0; i < N; i++) {
      const gv = gt(g[i]!);
      v[i] = b2 * v[i]! + omb2 * (gv * gv + c.eps1);
    }
    forEachU = (f) => {
      for (let i = 0; i < N; i++) f(i, gt(g[i]!) / Math.sqrt(v[i]!));
    };
  }
  let sumU2 = 0;
  forEachU((_, u) => {
    sumU2 += u * u;
  });
  const k = alpha / Math.max(1, Math.sqrt(sumU2 / N) / c.clip);
  const keep = 1 - alpha * c.weightDecay;
  forEachU((i, u) => {
    p[i] = p[i]! * keep - k * u;
  });
}

const STATE_INPUTS = ['row', 'col', 'v'] as const;

function outputs(b: { incRef(dataId: tf.DataId): void }, ins: Inputs): tf.TensorInfo[] {
  const out = [inPlaceOutput(b, ins.param)];
  for (const k of STATE_INPUTS) if (ins[k] != null) out.push(inPlaceOutput(b, ins[k]));
  return out;
}

const adalomoCpu: CpuKernel<Inputs, Attrs> = ({ inputs: ins, backend: b, attrs }) => {
  const arr = (t: tf.TensorInfo | undefined) =>
    t == null ? undefined : (b.data.get(t.dataId).values as Float32Array);
  updateArrays(
    { p: arr(ins.param)!, g: arr(ins.grad)!, row: arr(ins.row), col: arr(ins.col), v: arr(ins.v) },
    ins.param.shape,
    attrs,
  );
  return outputs(b, ins);
};

const adalomoWasm: WasmKernel<Inputs, Attrs> = ({ inputs: ins, backend: b, attrs }) => {
  // Nothing is allocated on the wasm heap in this kernel, so the views stay valid.
  const view = (t: tf.TensorInfo | undefined) =>
    t == null ? undefined : (b.typedArrayFromHeap(t) as Float32Array);
  updateArrays(
    { p: view(ins.param)!, g: view(ins.grad)!, row: view(ins.row), col: view(ins.col), v: view(ins.v) },
    ins.param.shape,
    attrs,
  );
  // The wasm backend caches packed weights per tensor id: drop them, or matMuls keep the old weights.
  for (const t of [ins.param, ins.row, ins.col, ins.v]) if (t != null) invalidateWasmCaches(b, t);
  return outputs(b, ins);
};

type Uniform = { type: 'float32' | 'int32'; data: number[] };
const f32 = (x: number): Uniform => ({ type: 'float32', data: [x] });
const i32 = (x: number): Uniform => ({ type: 'int32', data: [x] });

/** WGSL: the transformed gradient g' = clamp(g, ±gclip) · gscale of the element `e` of G. */
const GT = (e: string) => `(clamp(G[${e}], -uniforms.gclip, uniforms.gclip) * uniforms.gscale)`;
const G_UNIFORMS = 'gclip : f32, gscale : f32,';

/** WGSL statements defining `u` (the unclipped update U at flat index `idx`). */
const U_FACTORED = `let row = idx / uniforms.nCols; let col = idx - row * uniforms.nCols; let bt = row / uniforms.nRows;
          let u = ${GT('idx')} * inverseSqrt(Rw[row] / Rm[bt]) * inverseSqrt(Cl[bt * uniforms.nCols + col]);`;
const U_VECTOR = `let u = ${GT('idx')} * inverseSqrt(V[idx]);`;

/**
 * The webgpu kernel: a handful of dispatches, each writing only its own `result` binding (a buffer is never bound
 * as both input and output), in place for p and the state. Factored: R (one thread per row), C (one per column),
 * row means (one per batch), partial sums of U² and p² per 256 elements, the scalars [lr_p, k] (one thread), then
 * p. Vector: V, partial sums, scalars, p.
 */
const adalomoWebGPU: WebGPUKernel<Inputs, Attrs> = ({ inputs: ins, backend: b, attrs: c }) => {
  const N = tf.util.sizeFromShape(ins.param.shape);
  const run = (program: FlatProgram, progInputs: tf.TensorInfo[], uniforms: Uniform[], out?: tf.TensorInfo) =>
    b.runWebGPUProgram(program, progInputs.map(flat), 'float32', uniforms, out && flat(out));
  const temps: tf.TensorInfo[] = [];
  const gU = [f32(c.gclip), f32(c.gscale)];
  const ema = [...gU, f32(c.eps1), f32(c.beta2t), f32(1 - c.beta2t)];
  const emaUniforms = `${G_UNIFORMS} eps1 : f32, b2t : f32, omb2t : f32,`;

  let uInputs: tf.TensorInfo[];
  let uNames: string[];
  let uExpr: string;
  let uUniforms: string;
  let uValues: Uniform[];
  const factored = ins.row != null;
  if (factored) {
    const { B, m, n } = factoredDims(ins.param.shape);
    const rowMean = factoredMomentWebGPU(
      b,
      { grad: ins.grad, row: ins.row!, col: ins.col! },
      { B, m, n },
      c.beta2t,
      c.eps1,
      { key: '_clip', at: GT, uniforms: G_UNIFORMS, values: gU },
    );
    temps.push(rowMean);
    uInputs = [ins.grad, ins.row!, ins.col!, rowMean];
    uNames = ['G', 'Rw', 'Cl', 'Rm'];
    uExpr = U_FACTORED;
    uUniforms = `nRows : i32, nCols : i32, ${G_UNIFORMS}`;
    uValues = [i32(m), i32(n), ...gU];
  } else {
    run(
      flatProgram({
        key: 'adalomo_v',
        size: N,
        inputs: ['G'],
        uniforms: emaUniforms,
        body: `let g = ${GT('index')};
          result[index] = uniforms.b2t * result[index] + uniforms.omb2t * (g * g + uniforms.eps1);`,
      }),
      [ins.grad],
      ema,
      ins.v,
    );
    uInputs = [ins.grad, ins.v!];
    uNames = ['G', 'V'];
    uExpr = U_VECTOR;
    uUniforms = G_UNIFORMS;
    uValues = [...gU];
  }
  const kind = factored ? 'f' : 'v';
  const update = {
    key: `adalomo_${kind}`,
    inputs: uInputs,
    names: uNames,
    expr: uExpr,
    uniforms: uUniforms,
    values: uValues,
  };
  const scalars = updateScaleWebGPU(b, ins.param, update, {
    rho: c.lr,
    eps2: c.eps2,
    clip: c.clip,
    scaleByParam: true,
  });
  temps.push(scalars);
  run(
    flatProgram({
      key: `adalomo_p_${kind}`,
      size: N,
      inputs: [...uNames, 'Sc'],
      uniforms: `${uUniforms} wd : f32,`,
      body: `let idx = index; ${uExpr}
          let p = result[idx];
          result[idx] = p * (1.0 - Sc[0] * uniforms.wd) - Sc[1] * u;`,
    }),
    [...uInputs, scalars],
    [...uValues, f32(c.weightDecay)],
    ins.param,
  );
  for (const t of temps) b.disposeData(t.dataId);
  // A CPU copy cached by an earlier read would now be stale.
  b.tensorMap.get(ins.param.dataId).values = null;
  for (const k of STATE_INPUTS) if (ins[k] != null) b.tensorMap.get(ins[k].dataId).values = null;
  return outputs(b, ins);
};

const rms = (x: tf.Tensor): tf.Tensor => tf.sqrt(tf.mean(tf.square(x)));

/** Portable path (tfjs ops + `assign`), the reference's order of operations. */
function adalomoFallback({ param, grad, state, hp }: AdaLomoKernelArgs): void {
  const { beta2t } = hp;
  tf.tidy(() => {
    let g: tf.Tensor = grad;
    if (hp.clipValue != null) g = tf.clipByValue(g, -hp.clipValue, hp.clipValue);
    if (hp.gradScale !== 1) g = tf.mul(g, hp.gradScale);
    // RMS(p) before anything changes p.
    const alpha = tf.mul(tf.maximum(rms(param), hp.eps2), hp.lr);
    let update: tf.Tensor;
    if (state.exp_avg_sq_row != null && state.exp_avg_sq_col != null) {
      const row = state.exp_avg_sq_row;
      const col = state.exp_avg_sq_col;
      const u = tf.add(tf.square(g), hp.eps1);
      factoredMomentOps(row, col, u, beta2t);
      u.dispose();
      update = tf.tidy(() => tf.mul(factoredRsqrtOps(row, col), g));
    } else {
      const v = state.exp_avg_sq!;
      v.assign(tf.tidy(() => tf.add(tf.mul(v, beta2t), tf.mul(tf.add(tf.square(g), hp.eps1), 1 - beta2t))));
      update = tf.mul(tf.rsqrt(v), g);
    }
    const k = tf.div(alpha, tf.maximum(tf.div(rms(update), hp.clipThreshold), 1));
    param.assign(
      tf.tidy(() => {
        const decayed =
          hp.weightDecay !== 0 ? tf.mul(param, tf.sub(1, tf.mul(alpha, hp.weightDecay))) : param;
        return tf.sub(decayed, tf.mul(update, k));
      }),
    );
  });
}

/** In place only when nothing else holds p or a state buffer (clones, tape-saved tensors) and no buffer is shared. */
function canRunInPlace({ param, grad, state }: AdaLomoKernelArgs, backend: tf.KernelBackend): boolean {
  const { exp_avg_sq_row, exp_avg_sq_col, exp_avg_sq } = state;
  return canWriteInPlace([param, exp_avg_sq_row, exp_avg_sq_col, exp_avg_sq], [grad], backend);
}

export const adalomoKernel = defineKernel<AdaLomoKernelArgs, void, Inputs, Attrs>({
  name: 'KstarAdaLomo',
  backends: { cpu: adalomoCpu, wasm: adalomoWasm, webgpu: adalomoWebGPU },
  invoke: ({ param, grad, state, hp }) => {
    const inputs: tf.NamedTensorMap = { param, grad };
    if (state.exp_avg_sq_row != null) inputs.row = state.exp_avg_sq_row;
    if (state.exp_avg_sq_col != null) inputs.col = state.exp_avg_sq_col;
    if (state.exp_avg_sq != null) inputs.v = state.exp_avg_sq;
    return { inputs, attrs: attrsOf(hp) };
  },
  finish: (outs) => tf.dispose(outs),
  fallback: adalomoFallback,
  canRunNative: canRunInPlace,
});

function validateState(param: tf.Variable, state: AdaLomoStateVars): void {
  const expected = adalomoStateShapes(param.shape);
  for (const key of ['exp_avg_sq_row', 'exp_avg_sq_col', 'exp_avg_sq'] as const) {
    const want = expected[key];
    const got = state[key];
    if (want == null && got == null) continue;
    if (want == null || got == null) {
      throw new InputError(
        `adalomoUpdate: the state of '${param.name}' ${got == null ? 'lacks' : 'has an unexpected'} '${key}' (a [${param.shape}] parameter needs ${Object.keys(expected).join(', ')}): create it with adalomo().init`,
      );
    }
    if (!tf.util.arraysEqual(got.shape, want) || got.dtype !== 'float32') {
      throw new ShapeError(
        `adalomoUpdate: state '${key}' of '${param.name}' is ${got.dtype}[${got.shape}], expected float32[${want}] for a [${param.shape}] parameter`,
      );
    }
  }
}

/**
 * One AdaLomo update of `param` and `state` in place (`KstarAdaLomo` on cpu, wasm, webgpu; tfjs ops elsewhere and
 * whenever a buffer is shared). `hp.beta2t` = 1 − step^decayRate. `grad` is kept.
 */
export function adalomoUpdate(
  param: tf.Variable,
  grad: tf.Tensor,
  state: AdaLomoStateVars,
  hp: AdaLomoStepHyper,
  options?: { impl?: 'auto' | 'fallback' },
): void {
  checkParamGrad('adalomoUpdate', param, grad);
  validateState(param, state);
  if (param.size === 0) return;
  adalomoKernel.run({ param, grad, state, hp }, options);
}
