import { InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { type AdamStepConstants, type AdamStepHyper, adamStepConstants } from './adam-constants.ts';
import type { CpuKernel, WasmKernel, WebGPUKernel } from './define-kernel.ts';
import { cpuFloats, defineKernel } from './define-kernel.ts';
import { canWriteInPlace, inPlaceOutput } from './in-place.ts';
import { checkFloat32, checkShapeOfParam } from './update-checks.ts';
import { invalidateWasmCaches } from './wasm-kernels.ts';
import { flat, flatProgram } from './wgsl.ts';

/** One AdamW step's hyper-parameters (1-based `step`: bias correction uses β^step). */
export type AdamWHyper = AdamStepHyper;

export interface AdamWArgs {
  param: tf.Variable;
  grad: tf.Tensor;
  m: tf.Variable;
  v: tf.Variable;
  hp: AdamWHyper;
}

/**
 * Per-step constants (`adamStepConstants`, computed once in float64):
 *   decay = 1 − lr·wd, stepSize = lr / (1 − β1^t), sqrtBc2 = √(1 − β2^t).
 * Element-wise (torch.optim.AdamW):
 *   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  p ← p·decay − (m / (√v / sqrtBc2 + eps))·stepSize
 */
type AdamWConsts = AdamStepConstants;
const constants = adamStepConstants;

type Inputs = { param: tf.TensorInfo; grad: tf.TensorInfo; m: tf.TensorInfo; v: tf.TensorInfo };

/** The shared loop of the cpu and wasm kernels (float64 arithmetic, float32 storage). */
function updateArrays(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  c: AdamWConsts,
): void {
  const { beta1, oneMinusBeta1, beta2, oneMinusBeta2, decay, stepSize, sqrtBc2, eps } = c;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const mi = beta1 * m[i] + oneMinusBeta1 * gi;
    const vi = beta2 * v[i] + oneMinusBeta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - (mi / (Math.sqrt(vi) / sqrtBc2 + eps)) * stepSize;
  }
}

const adamwCpu: CpuKernel<Inputs, AdamWConsts> = ({ inputs: { param, grad, m, v }, backend: b, attrs }) => {
  const arr = (t: tf.TensorInfo) => cpuFloats(b, t);
  updateArrays(arr(param), arr(grad), arr(m), arr(v), attrs);
  return [inPlaceOutput(b, param), inPlaceOutput(b, m), inPlaceOutput(b, v)];
};

const adamwWasm: WasmKernel<Inputs, AdamWConsts> = ({ inputs: { param, grad, m, v }, backend: b, attrs }) => {
  // No allocation happens in this kernel, so the heap views stay valid.
  const view = (t: tf.TensorInfo) => b.typedArrayFromHeap(t) as Float32Array;
  updateArrays(view(param), view(grad), view(m), view(v), attrs);
  for (const t of [param, m, v]) invalidateWasmCaches(b, t);
  return [inPlaceOutput(b, param), inPlaceOutput(b, m), inPlaceOutput(b, v)];
};

/**
 * Three in-place dispatches (m, v, then p), each writing only its own `result` binding: one buffer is never
 * bound as both input and output (Dawn rejects that asynchronously), so p reads the new m and v as inputs.
 */
const adamwWebGPU: WebGPUKernel<Inputs, AdamWConsts> = ({
  inputs: { param, grad, m, v },
  backend: b,
  attrs: c,
}) => {
  const size = tf.util.sizeFromShape(param.shape);
  const f32 = (...data: number[]) => data.map((d) => ({ type: 'float32' as const, data: [d] }));
  const moment = (key: string, body: string) =>
    flatProgram({ key, size, inputs: ['G'], uniforms: 'beta : f32, oneMinusBeta : f32,', body });
  b.runWebGPUProgram(
    moment('adamw_m', 'result[index] = uniforms.beta * result[index] + uniforms.oneMinusBeta * G[index];'),
    [flat(grad)],
    'float32',
    f32(c.beta1, c.oneMinusBeta1),
    flat(m),
  );
  b.runWebGPUProgram(
    moment(
      'adamw_v',
      'let g = G[index]; result[index] = uniforms.beta * result[index] + uniforms.oneMinusBeta * g * g;',
    ),
    [flat(grad)],
    'float32',
    f32(c.beta2, c.oneMinusBeta2),
    flat(v),
  );
  b.runWebGPUProgram(
    flatProgram({
      key: 'adamw_p',
      size,
      inputs: ['M', 'V'],
      uniforms: 'decay : f32, stepSize : f32, sqrtBc2 : f32, eps : f32,',
      body: `let denom = sqrt(V[index]) / uniforms.sqrtBc2 + uniforms.eps;
          result[index] = result[index] * uniforms.decay - (M[index] / denom) * uniforms.stepSize;`,
    }),
    [flat(m), flat(v)],
    'float32',
    f32(c.decay, c.stepSize, c.sqrtBc2, c.eps),
    flat(param),
  );
  // A CPU copy cached by an earlier read would now be stale.
  for (const t of [param, m, v]) b.tensorMap.get(t.dataId).values = null;
  return [inPlaceOutput(b, param), inPlaceOutput(b, m), inPlaceOutput(b, v)];
};

/** Portable path: tfjs ops + `assign`, one tidy; each state is computed in its own inner tidy to bound the peak. */
function adamwFallback({ param, grad, m, v, hp }: AdamWArgs): void {
  const c = constants(hp);
  tf.tidy(() => {
    m.assign(tf.tidy(() => tf.add(tf.mul(m, c.beta1), tf.mul(grad, c.oneMinusBeta1))));
    v.assign(tf.tidy(() => tf.add(tf.mul(v, c.beta2), tf.mul(tf.square(grad), c.oneMinusBeta2))));
    param.assign(
      tf.tidy(() => {
        const denom = tf.add(tf.div(tf.sqrt(v), c.sqrtBc2), c.eps);
        return tf.sub(tf.mul(param, c.decay), tf.mul(tf.div(m, denom), c.stepSize));
      }),
    );
  });
}

/** In place only when nothing else holds p, m or v (clones, tape-saved tensors) and no buffer is shared. */
function canRunInPlace({ param, grad, m, v }: AdamWArgs, backend: tf.KernelBackend): boolean {
  return canWriteInPlace([param, m, v], [grad], backend);
}

export const adamwKernel = defineKernel<AdamWArgs, void, Inputs, AdamWConsts>({
  name: 'KstarAdamW',
  backends: { cpu: adamwCpu, wasm: adamwWasm, webgpu: adamwWebGPU },
  invoke: ({ param, grad, m, v, hp }) => ({
    inputs: { param, grad, m, v },
    attrs: constants(hp),
  }),
  finish: (outputs) => tf.dispose(outputs),
  fallback: adamwFallback,
  canRunNative: canRunInPlace,
});

function validate({ param, grad, m, v, hp }: AdamWArgs): void {
  checkShapeOfParam('adamwUpdate', param, { grad, m, v }, "pass tensors of the parameter's shape");
  checkFloat32('adamwUpdate', { param, grad, m, v });
  const bad = (field: keyof AdamWHyper, rule: string) =>
    new InputError(`adamwUpdate: hp.${field} = ${hp[field]} is invalid: it must be ${rule}`);
  if (!(Number.isFinite(hp.lr) && hp.lr >= 0)) throw bad('lr', 'a finite number ≥ 0');
  if (!(hp.beta1 >= 0 && hp.beta1 < 1)) throw bad('beta1', 'in [0, 1)');
  if (!(hp.beta2 >= 0 && hp.beta2 < 1)) throw bad('beta2', 'in [0, 1)');
  if (!(Number.isFinite(hp.eps) && hp.eps > 0)) throw bad('eps', 'a finite number > 0');
  if (!(Number.isFinite(hp.weightDecay) && hp.weightDecay >= 0))
    throw bad('weightDecay', 'a finite number ≥ 0');
  if (!(Number.isInteger(hp.step) && hp.step >= 1)) throw bad('step', 'an integer ≥ 1 (1-based)');
}

/**
 * Updates param, m and v in place (torch.optim.AdamW semantics). Allocates at most one param-sized temporary
 * on the in-place path (in fact none).
 *
 * `impl: 'auto'` (default) runs the `KstarAdamW` kernel of the active backend (cpu, wasm, webgpu), which writes
 * the three buffers in place with no temporary; it falls back to tfjs ops + `assign` on other backends
 * (tensorflow) and whenever a buffer is shared (`refCount !== 1`: a clone or a tape-saved copy is alive), so
 * other holders never see the write. The fallback holds up to 5 param-sized temporaries at once (one inner
 * tidy per state) and swaps buffers through `assign`. Run it after `variableGrads` has returned (the tape is disposed).
 * On cpu, arrays returned by an earlier `dataSync()` of p, m or v are the live buffers and change too.
 */
export function adamwUpdate(
  param: tf.Variable,
  grad: tf.Tensor,
  m: tf.Variable,
  v: tf.Variable,
  hp: AdamWHyper,
  options?: { impl?: 'auto' | 'fallback' },
): void {
  const args: AdamWArgs = { param, grad, m, v, hp };
  validate(args);
  if (param.size === 0) return;
  adamwKernel.run(args, options);
}
