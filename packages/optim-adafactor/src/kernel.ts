import { InputError } from '@kstar/core';
import {
  canWriteInPlace,
  checkFloat32,
  checkShapeOfParam,
  checkStateShapes,
  clippedScale,
  defineKernel,
  type FlatProgram,
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
import { type AdafactorHparams, stepConstants } from './hparams.ts';
import { type AdafactorStateKey, stateShapes } from './state.ts';

/**
 * The fused Adafactor update (`KstarAdafactor`), HF `transformers.optimization.Adafactor` semantics, for one
 * parameter p of shape [...batch(B), m, n] (rank ≥ 2, factored over the last two dims) or a vector (rank ≤ 1):
 *
 *   alpha ← rho · (scaleParameter ? max(eps2, RMS(p)) : 1)          RMS(p) BEFORE the update
 *   u     ← g² + eps1
 *   R[b,i] ← β̂·R[b,i] + (1−β̂)·mean_j u[b,i,j]      C[b,j] ← β̂·C[b,j] + (1−β̂)·mean_i u[b,i,j]
 *   U     ← g · rsqrt(R[b,i] / mean_i R[b,i]) · rsqrt(C[b,j])        (vector: V ← β̂·V + (1−β̂)·u; U ← g·rsqrt(V))
 *   k     ← alpha / max(1, RMS(U) / clipThreshold)
 *   beta1: M ← β1·M + (1−β1)·k·U; step = M    else step = k·U
 *   p     ← p − weightDecay·alpha·p − step
 *
 * Native kernels (cpu, wasm: float64 JS loops over the float32 buffers; webgpu: WGSL) write p and the state IN
 * PLACE and never materialise U: RMS(U) is a reduction that recomputes U from g, R, C (or V), and the final pass
 * recomputes it again. So a native update allocates NO parameter-sized temporary; the only scratch is small
 * vectors (cpu/wasm: 2n float64 for the column sums and rsqrt(C); webgpu: row means [B], ⌈numel/256⌉ partial
 * sums for RMS(U) and RMS(p), and the 2 scalars [alpha, k]). The portable fallback (tfjs ops + `assign`) holds up
 * to 3 parameter-sized temporaries at once.
 */

/** Per-step constants of one update (float64, computed in JS). */
export interface AdafactorStepHyper {
  /** ρ_t (relative step) or lr. */
  rho: number;
  /** β̂2_t = 1 − t^decayRate. */
  beta2t: number;
  scaleParameter: boolean;
  eps1: number;
  eps2: number;
  clipThreshold: number;
  /** First-moment decay, or null (no `exp_avg`). */
  beta1: number | null;
  weightDecay: number;
}

export type AdafactorStateVars = Partial<Record<AdafactorStateKey, tf.Variable>>;

export interface AdafactorKernelArgs {
  param: tf.Variable;
  grad: tf.Tensor;
  state: AdafactorStateVars;
  hp: AdafactorStepHyper;
}

/** Kernel attributes: numbers only (flags as 0/1). */
interface Attrs {
  rho: number;
  beta2t: number;
  scale: number;
  eps1: number;
  eps2: number;
  clip: number;
  beta1: number;
  weightDecay: number;
}

function attrsOf(hp: AdafactorStepHyper): Attrs {
  return {
    rho: hp.rho,
    beta2t: hp.beta2t,
    scale: hp.scaleParameter ? 1 : 0,
    eps1: hp.eps1,
    eps2: hp.eps2,
    clip: hp.clipThreshold,
    beta1: hp.beta1 ?? -1,
    weightDecay: hp.weightDecay,
  };
}

type Inputs = {
  param: tf.TensorInfo;
  grad: tf.TensorInfo;
  row?: tf.TensorInfo;
  col?: tf.TensorInfo;
  v?: tf.TensorInfo;
  m?: tf.TensorInfo;
};

/** The inputs the kernel writes in place: its outputs, in this order. */
const WRITTEN = ['param', 'row', 'col', 'v', 'm'] as const;

/** The shared update of the cpu and wasm kernels: float64 arithmetic, float32 storage, in place. */
function updateArrays(a: InputArrays<Inputs>, c: Attrs, ins: Inputs): void {
  const { param: p, grad: g } = a;
  const N = p.length;
  let alpha = c.rho;
  if (c.scale) {
    let sp = 0;
    for (let i = 0; i < N; i++) sp += p[i]! * p[i]!;
    alpha = c.rho * Math.max(c.eps2, Math.sqrt(sp / N));
  }
  // U(i) is computed twice (RMS(U), then the update), never stored.
  const forEachU = secondMomentArrays(g, a, ins.param.shape, c.beta2t, c.eps1);
  const k = clippedScale(forEachU, N, alpha, c.clip);
  const decay = c.weightDecay * alpha;
  if (a.m != null) {
    const mom = a.m;
    const b1 = c.beta1;
    const omb1 = 1 - c.beta1;
    forEachU((i, u) => {
      mom[i] = b1 * mom[i]! + omb1 * (k * u);
      const pv = p[i]!;
      p[i] = pv - decay * pv - mom[i]!;
    });
  } else {
    forEachU((i, u) => {
      const pv = p[i]!;
      p[i] = pv - decay * pv - k * u;
    });
  }
}

const adafactorArrays = inPlaceArrayKernels<Inputs, Attrs>(WRITTEN, updateArrays);

type Uniform = { type: 'float32' | 'int32'; data: number[] };
const f32 = (x: number): Uniform => ({ type: 'float32', data: [x] });

/**
 * The webgpu kernel: a handful of dispatches, each writing only its own `result` binding (a buffer is never bound
 * as both input and output: Dawn rejects that asynchronously), in place for p and the state.
 * Factored: R (one thread per row), C (one per column), row means (one per batch), partial sums of U² (and p²)
 * per 256 elements, the scalars [alpha, k] (one thread), then [M and] p. Vector: V, partial sums, scalars, [M,] p.
 */
const adafactorWebGPU: WebGPUKernel<Inputs, Attrs> = ({ inputs: ins, backend: b, attrs: c }) => {
  const N = tf.util.sizeFromShape(ins.param.shape);
  const run = (
    program: FlatProgram,
    progInputs: readonly tf.TensorInfo[],
    uniforms: Uniform[],
    out: tf.TensorInfo,
  ) => b.runWebGPUProgram(program, progInputs.map(flat), 'float32', uniforms, flat(out));
  const { kind, update, scalars, temps } = secondMomentWebGPU(b, ins, {
    key: 'adafactor',
    beta: c.beta2t,
    eps1: c.eps1,
    rho: c.rho,
    eps2: c.eps2,
    clip: c.clip,
    scaleByParam: c.scale !== 0,
  });
  if (ins.m != null) {
    run(
      flatProgram({
        key: `adafactor_m_${kind}`,
        size: N,
        inputs: [...update.names, 'Sc'],
        uniforms: `${update.uniforms} beta1 : f32, omb1 : f32,`,
        body: `let idx = index; ${update.expr}
          result[idx] = uniforms.beta1 * result[idx] + uniforms.omb1 * (Sc[1] * u);`,
      }),
      [...update.inputs, scalars],
      [...update.values, f32(c.beta1), f32(1 - c.beta1)],
      ins.m,
    );
    run(
      flatProgram({
        key: 'adafactor_p_momentum',
        size: N,
        inputs: ['Mo', 'Sc'],
        uniforms: 'wd : f32,',
        body: `let p = result[index];
          result[index] = (p - uniforms.wd * Sc[0] * p) - Mo[index];`,
      }),
      [ins.m, scalars],
      [f32(c.weightDecay)],
      ins.param,
    );
  } else {
    run(
      flatProgram({
        key: `adafactor_p_${kind}`,
        size: N,
        inputs: [...update.names, 'Sc'],
        uniforms: `${update.uniforms} wd : f32,`,
        body: `let idx = index; ${update.expr}
          let p = result[idx];
          result[idx] = (p - uniforms.wd * Sc[0] * p) - Sc[1] * u;`,
      }),
      [...update.inputs, scalars],
      [...update.values, f32(c.weightDecay)],
      ins.param,
    );
  }
  const written = WRITTEN.map((k) => ins[k]);
  releaseAfterWebGPUWrite(b, written, temps);
  return inPlaceOutputs(b, written);
};

/** Portable path (tfjs ops + `assign`), HF's order of operations; up to 3 parameter-sized temporaries at once. */
function adafactorFallback({ param, grad, state, hp }: AdafactorKernelArgs): void {
  tf.tidy(() => {
    // RMS(p) before anything changes p.
    const alpha = hp.scaleParameter ? tf.mul(tf.maximum(rmsOps(param), hp.eps2), hp.rho) : tf.scalar(hp.rho);
    const update = secondMomentOps(grad, secondMomentOf(state), hp.beta2t, hp.eps1);
    const k = tf.div(alpha, tf.maximum(tf.div(rmsOps(update), hp.clipThreshold), 1));
    let step = tf.mul(update, k);
    update.dispose();
    if (hp.beta1 != null) {
      const m = state.exp_avg!;
      const b1 = hp.beta1;
      m.assign(tf.tidy(() => tf.add(tf.mul(m, b1), tf.mul(step, 1 - b1))));
      step.dispose();
      step = m;
    }
    param.assign(
      tf.tidy(() => {
        const decayed =
          hp.weightDecay !== 0 ? tf.sub(param, tf.mul(param, tf.mul(alpha, hp.weightDecay))) : param;
        return tf.sub(decayed, step);
      }),
    );
  });
}

/** In place only when nothing else holds p or a state buffer (clones, tape-saved tensors) and no buffer is shared. */
function canRunInPlace({ param, grad, state }: AdafactorKernelArgs, backend: tf.KernelBackend): boolean {
  return canWriteInPlace([param, ...Object.values(secondMomentOf(state)), state.exp_avg], [grad], backend);
}

export const adafactorKernel = defineKernel<AdafactorKernelArgs, void, Inputs, Attrs>({
  name: 'KstarAdafactor',
  backends: { ...adafactorArrays, webgpu: adafactorWebGPU },
  invoke: ({ param, grad, state, hp }) => {
    const inputs: tf.NamedTensorMap = { param, grad, ...secondMomentOf(state) };
    if (state.exp_avg != null) inputs.m = state.exp_avg;
    return { inputs, attrs: attrsOf(hp) };
  },
  finish: (outs) => tf.dispose(outs),
  fallback: adafactorFallback,
  canRunNative: canRunInPlace,
});

function validate(
  param: tf.Variable,
  grad: tf.Tensor,
  state: AdafactorStateVars,
  withMomentum: boolean,
): void {
  checkShapeOfParam('adafactorUpdate', param, { grad }, 'pass the gradient of this parameter');
  checkFloat32('adafactorUpdate', { param, grad });
  checkStateShapes(
    'adafactorUpdate',
    param,
    state,
    stateShapes(param.shape, withMomentum),
    ['exp_avg_sq_row', 'exp_avg_sq_col', 'exp_avg_sq', 'exp_avg'],
    { needs: withMomentum ? ' with beta1' : '', create: 'adafactor().init or for the same beta1' },
  );
}

/**
 * One Adafactor step of `param` (HF semantics) at 1-based `step`, updating `state` (`exp_avg_sq_row` +
 * `exp_avg_sq_col`, or `exp_avg_sq`; `exp_avg` with beta1) and `param` in place through `KstarAdafactor` on cpu,
 * wasm and webgpu, or through tfjs ops + `assign` elsewhere (tensorflow) and whenever a buffer is shared
 * (`refCount !== 1`). `grad` is not disposed. Run it after `variableGrads` has returned (the tape is disposed).
 */
export function adafactorUpdate(
  param: tf.Variable,
  grad: tf.Tensor,
  state: AdafactorStateVars,
  hparams: AdafactorHparams,
  step: number,
  options?: { impl?: 'auto' | 'fallback' },
): void {
  if (!(Number.isInteger(step) && step >= 1)) {
    throw new InputError(`adafactorUpdate: step = ${step} is invalid: it must be an integer ≥ 1 (1-based)`);
  }
  validate(param, grad, state, hparams.beta1 != null);
  if (param.size === 0) return;
  const { rho, beta2t } = stepConstants(hparams, step);
  const hp: AdafactorStepHyper = {
    rho,
    beta2t,
    scaleParameter: hparams.scaleParameter,
    eps1: hparams.eps1,
    eps2: hparams.eps2,
    clipThreshold: hparams.clipThreshold,
    beta1: hparams.beta1,
    weightDecay: hparams.weightDecay,
  };
  adafactorKernel.run({ param, grad, state, hp }, options);
}
