import {
  canWriteInPlace,
  checkStateShapes,
  clippedScale,
  defineKernel,
  flat,
  flatProgram,
  type InputArrays,
  inPlaceArrayKernels,
  inPlaceOutputs,
  releaseAfterWebGPUWrite,
  rmsOps,
  secondMomentArrays,
  secondMomentOf,
  secondMomentOps,
  secondMomentWebGPU,
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

/** The inputs the kernel writes in place: its outputs, in this order. */
const WRITTEN = ['param', 'row', 'col', 'v'] as const;

/** The shared update of the cpu and wasm kernels: float64 arithmetic, float32 storage, in place. */
function updateArrays(a: InputArrays<Inputs>, c: Attrs, ins: Inputs): void {
  const { param: p, grad: g } = a;
  const N = p.length;
  const { gclip, gscale } = c;
  const gt = (x: number): number => Math.min(gclip, Math.max(x, -gclip)) * gscale;
  let sp = 0;
  for (let i = 0; i < N; i++) sp += p[i]! * p[i]!;
  const alpha = c.lr * Math.max(c.eps2, Math.sqrt(sp / N));
  // U(i) is computed twice (RMS(U), then the update), never stored.
  const forEachU = secondMomentArrays(g, a, ins.param.shape, c.beta2t, c.eps1, gt);
  const k = clippedScale(forEachU, N, alpha, c.clip);
  const keep = 1 - alpha * c.weightDecay;
  forEachU((i, u) => {
    p[i] = p[i]! * keep - k * u;
  });
}

const adalomoArrays = inPlaceArrayKernels<Inputs, Attrs>(WRITTEN, updateArrays);

type Uniform = { type: 'float32' | 'int32'; data: number[] };
const f32 = (x: number): Uniform => ({ type: 'float32', data: [x] });

/** WGSL: the transformed gradient g' = clamp(g, ±gclip) · gscale of the element `e` of G. */
const GT = (e: string) => `(clamp(G[${e}], -uniforms.gclip, uniforms.gclip) * uniforms.gscale)`;

/**
 * The webgpu kernel: a handful of dispatches, each writing only its own `result` binding (a buffer is never bound
 * as both input and output), in place for p and the state. Factored: R (one thread per row), C (one per column),
 * row means (one per batch), partial sums of U² and p² per 256 elements, the scalars [lr_p, k] (one thread), then
 * p. Vector: V, partial sums, scalars, p.
 */
const adalomoWebGPU: WebGPUKernel<Inputs, Attrs> = ({ inputs: ins, backend: b, attrs: c }) => {
  const gradient = {
    key: '_clip',
    at: GT,
    uniforms: 'gclip : f32, gscale : f32,',
    values: [f32(c.gclip), f32(c.gscale)],
  };
  const { kind, update, scalars, temps } = secondMomentWebGPU(
    b,
    ins,
    {
      key: 'adalomo',
      beta: c.beta2t,
      eps1: c.eps1,
      rho: c.lr,
      eps2: c.eps2,
      clip: c.clip,
      scaleByParam: true,
    },
    gradient,
  );
  b.runWebGPUProgram(
    flatProgram({
      key: `adalomo_p_${kind}`,
      size: tf.util.sizeFromShape(ins.param.shape),
      inputs: [...update.names, 'Sc'],
      uniforms: `${update.uniforms} wd : f32,`,
      body: `let idx = index; ${update.expr}
          let p = result[idx];
          result[idx] = p * (1.0 - Sc[0] * uniforms.wd) - Sc[1] * u;`,
    }),
    [...update.inputs, scalars].map(flat),
    'float32',
    [...update.values, f32(c.weightDecay)],
    flat(ins.param),
  );
  const written = WRITTEN.map((k) => ins[k]);
  releaseAfterWebGPUWrite(b, written, temps);
  return inPlaceOutputs(b, written);
};

/** Portable path (tfjs ops + `assign`), the reference's order of operations. */
function adalomoFallback({ param, grad, state, hp }: AdaLomoKernelArgs): void {
  tf.tidy(() => {
    let g: tf.Tensor = grad;
    if (hp.clipValue != null) g = tf.clipByValue(g, -hp.clipValue, hp.clipValue);
    if (hp.gradScale !== 1) g = tf.mul(g, hp.gradScale);
    // RMS(p) before anything changes p.
    const alpha = tf.mul(tf.maximum(rmsOps(param), hp.eps2), hp.lr);
    const update = secondMomentOps(g, secondMomentOf(state), hp.beta2t, hp.eps1);
    const k = tf.div(alpha, tf.maximum(tf.div(rmsOps(update), hp.clipThreshold), 1));
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
  return canWriteInPlace([param, ...Object.values(secondMomentOf(state))], [grad], backend);
}

export const adalomoKernel = defineKernel<AdaLomoKernelArgs, void, Inputs, Attrs>({
  name: 'KstarAdaLomo',
  backends: { ...adalomoArrays, webgpu: adalomoWebGPU },
  invoke: ({ param, grad, state, hp }) => {
    const inputs: tf.NamedTensorMap = { param, grad, ...secondMomentOf(state) };
    return { inputs, attrs: attrsOf(hp) };
  },
  finish: (outs) => tf.dispose(outs),
  fallback: adalomoFallback,
  canRunNative: canRunInPlace,
});

function validateState(param: tf.Variable, state: AdaLomoStateVars): void {
  checkStateShapes(
    'adalomoUpdate',
    param,
    state,
    adalomoStateShapes(param.shape),
    ['exp_avg_sq_row', 'exp_avg_sq_col', 'exp_avg_sq'],
    { create: 'adalomo().init' },
  );
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
