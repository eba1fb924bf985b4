import { InputError } from '@kstar/core';
import {
  canWriteInPlace,
  checkFloat32,
  checkShapeOfParam,
  defineKernel,
  flat,
  flatProgram,
  inPlaceArrayKernels,
  inPlaceOutput,
  type WebGPUKernel,
} from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';

/** The numbers one Lion step needs. `weightDecay` is the effective λ (already divided by lr₀ when decoupled). */
export interface LionStepHyper {
  lr: number;
  beta1: number;
  beta2: number;
  weightDecay: number;
}

export interface LionArgs {
  /** The parameter, updated in place (same shape as grad and m). */
  param: tf.Variable;
  /** The gradient; read only, never disposed. */
  grad: tf.Tensor;
  /** The momentum (`exp_avg`), updated in place. */
  m: tf.Variable;
  hp: LionStepHyper;
}

/**
 * Per-step constants, computed once in float64: decay = 1 − lr·λ, 1 − β1, 1 − β2.
 * Element-wise (lion_pytorch `update_fn`):
 *   c ← β1·m + (1−β1)·g;  p ← p·decay − lr·sign(c);  m ← β2·m + (1−β2)·g     (sign(0) = 0)
 */
interface LionConsts {
  lr: number;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  decay: number;
}

function constants(hp: LionStepHyper): LionConsts {
  return {
    lr: hp.lr,
    beta1: hp.beta1,
    oneMinusBeta1: 1 - hp.beta1,
    beta2: hp.beta2,
    oneMinusBeta2: 1 - hp.beta2,
    decay: 1 - hp.lr * hp.weightDecay,
  };
}

type Inputs = { param: tf.TensorInfo; grad: tf.TensorInfo; m: tf.TensorInfo };

/**
 * The shared loop of the cpu and wasm kernels (float64 arithmetic, float32 storage: one rounding per stored
 * value). `Math.sign` gives sign(0) = 0 and propagates NaN, as torch's `sign_` does.
 */
function updateArrays(p: Float32Array, g: Float32Array, m: Float32Array, k: LionConsts): void {
  const { lr, beta1, oneMinusBeta1, beta2, oneMinusBeta2, decay } = k;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    const mi = m[i]!;
    p[i] = p[i]! * decay - lr * Math.sign(beta1 * mi + oneMinusBeta1 * gi);
    m[i] = beta2 * mi + oneMinusBeta2 * gi;
  }
}

/** cpu and wasm: the loop in place over p and m (their outputs, in that order). */
const lionArrays = inPlaceArrayKernels<Inputs, LionConsts>(['param', 'm'], (a, k) =>
  updateArrays(a.param, a.grad, a.m, k),
);

const f32 = (...data: number[]) => data.map((d) => ({ type: 'float32' as const, data: [d] }));

/**
 * Two in-place dispatches, p first (it reads the OLD m), then m. Each writes only its own `result` binding and
 * reads the others as inputs: one buffer is never bound as both input and output (Dawn rejects that
 * asynchronously). WGSL `sign(0.0)` is 0. No temporary buffer.
 */
const lionWebGPU: WebGPUKernel<Inputs, LionConsts> = ({
  inputs: { param, grad, m },
  backend: b,
  attrs: k,
}) => {
  const size = tf.util.sizeFromShape(param.shape);
  b.runWebGPUProgram(
    flatProgram({
      key: 'lion_p',
      size,
      inputs: ['M', 'G'],
      uniforms: 'beta1 : f32, oneMinusBeta1 : f32, decay : f32, lr : f32,',
      body: `let c = uniforms.beta1 * M[index] + uniforms.oneMinusBeta1 * G[index];
          result[index] = result[index] * uniforms.decay - uniforms.lr * sign(c);`,
    }),
    [flat(m), flat(grad)],
    'float32',
    f32(k.beta1, k.oneMinusBeta1, k.decay, k.lr),
    flat(param),
  );
  b.runWebGPUProgram(
    flatProgram({
      key: 'lion_m',
      size,
      inputs: ['G'],
      uniforms: 'beta2 : f32, oneMinusBeta2 : f32,',
      body: 'result[index] = uniforms.beta2 * result[index] + uniforms.oneMinusBeta2 * G[index];',
    }),
    [flat(grad)],
    'float32',
    f32(k.beta2, k.oneMinusBeta2),
    flat(m),
  );
  // A CPU copy cached by an earlier read would now be stale.
  for (const t of [param, m]) b.tensorMap.get(t.dataId).values = null;
  return [inPlaceOutput(b, param), inPlaceOutput(b, m)];
};

/**
 * Portable path (tfjs ops + `assign`, float32 arithmetic). Intermediates are disposed as soon as they are used:
 * at most 3 param-sized temporaries are alive at once; p and m get new buffers through `assign`.
 */
function lionFallback({ param, grad, m, hp }: LionArgs): void {
  const k = constants(hp);
  tf.tidy(() => {
    const a = tf.mul(m, k.beta1);
    const b = tf.mul(grad, k.oneMinusBeta1);
    const c = tf.add(a, b); // [..shape] c = β1·m + (1−β1)·g
    tf.dispose([a, b]);
    const s = tf.sign(c);
    c.dispose();
    const u = tf.mul(s, k.lr);
    s.dispose();
    const d = tf.mul(param, k.decay);
    const newP = tf.sub(d, u); // p·(1 − lr·λ) − lr·sign(c)
    tf.dispose([d, u]);
    param.assign(newP);
    newP.dispose();
    const ma = tf.mul(m, k.beta2);
    const mb = tf.mul(grad, k.oneMinusBeta2);
    const newM = tf.add(ma, mb); // β2·m + (1−β2)·g
    tf.dispose([ma, mb]);
    m.assign(newM);
    newM.dispose();
  });
}

/** In place only when nothing else holds p or m (clones, tape-saved tensors) and no buffer is shared. */
function canRunInPlace({ param, grad, m }: LionArgs, backend: tf.KernelBackend): boolean {
  return canWriteInPlace([param, m], [grad], backend);
}

/** The fused Lion update: `KstarLion` natively on cpu, wasm and webgpu, tfjs ops elsewhere. */
export const lionKernel = defineKernel<LionArgs, void, Inputs, LionConsts>({
  name: 'KstarLion',
  backends: { ...lionArrays, webgpu: lionWebGPU },
  invoke: ({ param, grad, m, hp }) => ({
    inputs: { param, grad, m },
    attrs: constants(hp),
  }),
  finish: (outputs) => tf.dispose(outputs),
  fallback: lionFallback,
  canRunNative: canRunInPlace,
});

function validate({ param, grad, m, hp }: LionArgs): void {
  checkShapeOfParam('lionUpdate', param, { grad, m }, "pass tensors of the parameter's shape");
  checkFloat32('lionUpdate', { param, grad, m });
  const bad = (field: keyof LionStepHyper, rule: string) =>
    new InputError(`lionUpdate: hp.${field} = ${hp[field]} is invalid: it must be ${rule}`);
  if (!(Number.isFinite(hp.lr) && hp.lr >= 0)) throw bad('lr', 'a finite number ≥ 0');
  if (!(hp.beta1 >= 0 && hp.beta1 <= 1)) throw bad('beta1', 'in [0, 1]');
  if (!(hp.beta2 >= 0 && hp.beta2 <= 1)) throw bad('beta2', 'in [0, 1]');
  if (!(Number.isFinite(hp.weightDecay) && hp.weightDecay >= 0)) {
    throw bad('weightDecay', 'a finite number ≥ 0');
  }
}

/**
 * One Lion step (lion_pytorch semantics), updating `param` and `m` in place:
 *   p ← p·(1 − lr·λ);  p ← p − lr·sign(β1·m + (1−β1)·g);  m ← β2·m + (1−β2)·g.
 *
 * `impl: 'auto'` (default) runs the `KstarLion` kernel of the active backend (cpu, wasm, webgpu), which writes
 * both buffers in place and allocates NO param-sized temporary. It falls back to tfjs ops + `assign` on other
 * backends (tensorflow) and whenever a buffer is shared (`refCount !== 1`: a clone or tape-saved copy is alive),
 * so other holders never see the write; the fallback holds at most 3 param-sized temporaries at once. Run it
 * after `variableGrads` has returned (the tape is disposed). On cpu, arrays returned by an earlier
 * `dataSync()` of p or m are the live buffers and change too.
 */
export function lionUpdate(
  param: tf.Variable,
  grad: tf.Tensor,
  m: tf.Variable,
  hp: LionStepHyper,
  options?: { impl?: 'auto' | 'fallback' },
): void {
  const args: LionArgs = { param, grad, m, hp };
  validate(args);
  if (param.size === 0) return;
  lionKernel.run(args, options);
}
