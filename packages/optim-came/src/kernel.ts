import { InputError, ShapeError } from '@kstar/core';
import {
  type CpuKernel,
  canWriteInPlace,
  checkFloat32,
  cpuFloats,
  defineKernel,
  inPlaceOutput,
  invalidateWasmCaches,
  type WasmKernel,
  type WebGPUKernel,
} from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { cameFactoredFallback, cameVectorFallback } from './fallback.ts';
import { cameGeometry } from './geometry.ts';
import type { CameHparams } from './hparams.ts';
import { type CameConsts, cameFactoredArrays, cameVectorArrays } from './loops.ts';
import {
  type CameFactoredState,
  type CameState,
  type CameVectorState,
  isFactoredState,
  stateShapes,
} from './state.ts';
import { cameFactoredWebGPU, cameVectorWebGPU } from './webgpu.ts';

/** What one update needs: the hyper-parameters (K* names). */
export type CameHyper = CameHparams;

interface FactoredArgs {
  param: tf.Variable;
  grad: tf.Tensor;
  state: CameFactoredState;
  c: CameConsts;
}
interface VectorArgs {
  param: tf.Variable;
  grad: tf.Tensor;
  state: CameVectorState;
  c: CameConsts;
}

function constants(hp: CameHyper, shape: readonly number[]): CameConsts {
  const g = cameGeometry(shape);
  return {
    lr: hp.lr,
    beta1: hp.beta1,
    oneMinusBeta1: 1 - hp.beta1,
    beta2: hp.beta2,
    oneMinusBeta2: 1 - hp.beta2,
    beta3: hp.beta3,
    oneMinusBeta3: 1 - hp.beta3,
    eps1: hp.eps1,
    eps2: hp.eps2,
    clipThreshold: hp.clipThreshold,
    wdLr: hp.weightDecay * hp.lr,
    batch: g.batch,
    rows: g.rows,
    cols: g.cols,
  };
}

type FInputs = Record<'param' | 'grad' | 'm' | 'vRow' | 'vCol' | 'resRow' | 'resCol', tf.TensorInfo>;
type VInputs = Record<'param' | 'grad' | 'm' | 'v', tf.TensorInfo>;

const factoredCpu: CpuKernel<FInputs, CameConsts> = ({ inputs: x, backend: b, attrs }) => {
  const a = (t: tf.TensorInfo) => cpuFloats(b, t);
  cameFactoredArrays(a(x.param), a(x.grad), a(x.m), a(x.vRow), a(x.vCol), a(x.resRow), a(x.resCol), attrs);
  return inPlaceOutput(b, x.param);
};

const factoredWasm: WasmKernel<FInputs, CameConsts> = ({ inputs: x, backend: b, attrs }) => {
  // Nothing is allocated on the wasm heap in this kernel (temporaries are JS arrays), so the views stay valid.
  const a = (t: tf.TensorInfo) => b.typedArrayFromHeap(t) as Float32Array;
  cameFactoredArrays(a(x.param), a(x.grad), a(x.m), a(x.vRow), a(x.vCol), a(x.resRow), a(x.resCol), attrs);
  // The wasm backend caches packed weights per tensor id: drop them, or matMuls keep the old weights.
  for (const t of [x.param, x.m, x.vRow, x.vCol, x.resRow, x.resCol]) invalidateWasmCaches(b, t);
  return inPlaceOutput(b, x.param);
};

const factoredWebGPU: WebGPUKernel<FInputs, CameConsts> = ({ inputs: x, backend: b, attrs }) => {
  cameFactoredWebGPU(b, x, attrs);
  return inPlaceOutput(b, x.param);
};

const vectorCpu: CpuKernel<VInputs, CameConsts> = ({ inputs: x, backend: b, attrs }) => {
  const a = (t: tf.TensorInfo) => cpuFloats(b, t);
  cameVectorArrays(a(x.param), a(x.grad), a(x.m), a(x.v), attrs);
  return inPlaceOutput(b, x.param);
};

const vectorWasm: WasmKernel<VInputs, CameConsts> = ({ inputs: x, backend: b, attrs }) => {
  const a = (t: tf.TensorInfo) => b.typedArrayFromHeap(t) as Float32Array;
  cameVectorArrays(a(x.param), a(x.grad), a(x.m), a(x.v), attrs);
  for (const t of [x.param, x.m, x.v]) invalidateWasmCaches(b, t);
  return inPlaceOutput(b, x.param);
};

const vectorWebGPU: WebGPUKernel<VInputs, CameConsts> = ({ inputs: x, backend: b, attrs }) => {
  cameVectorWebGPU(b, x, attrs);
  return inPlaceOutput(b, x.param);
};

/** In place only when nothing else holds the parameter or a state buffer (clones, tape-saved tensors). */
function canRunInPlace(
  { param, grad, state }: { param: tf.Variable; grad: tf.Tensor; state: CameState },
  backend: tf.KernelBackend,
): boolean {
  return canWriteInPlace([param, ...Object.values(state)], [grad], backend);
}

export const cameFactoredKernel = defineKernel<FactoredArgs, void, FInputs, CameConsts>({
  name: 'KstarCameFactored',
  backends: { cpu: factoredCpu, wasm: factoredWasm, webgpu: factoredWebGPU },
  invoke: ({ param, grad, state, c }) => ({
    inputs: { param, grad, ...state },
    attrs: c,
  }),
  finish: (outputs) => tf.dispose(outputs),
  fallback: ({ param, grad, state, c }) => cameFactoredFallback(param, grad, state, c),
  canRunNative: canRunInPlace,
});

export const cameVectorKernel = defineKernel<VectorArgs, void, VInputs, CameConsts>({
  name: 'KstarCameVector',
  backends: { cpu: vectorCpu, wasm: vectorWasm, webgpu: vectorWebGPU },
  invoke: ({ param, grad, state, c }) => ({
    inputs: { param, grad, m: state.m, v: state.v },
    attrs: c,
  }),
  finish: (outputs) => tf.dispose(outputs),
  fallback: ({ param, grad, state, c }) => cameVectorFallback(param, grad, state, c),
  canRunNative: canRunInPlace,
});

/** Which implementation `cameUpdate` would use for these tensors on the active backend. */
export function cameWhich(
  param: tf.Variable,
  grad: tf.Tensor,
  state: CameState,
  options?: { impl?: 'auto' | 'fallback' },
): 'native' | 'fallback' {
  const c = constants(
    { lr: 1, beta1: 0, beta2: 0, beta3: 0, eps1: 1, eps2: 1, clipThreshold: 1, weightDecay: 0 },
    param.shape,
  );
  return isFactoredState(state)
    ? cameFactoredKernel.which({ param, grad, state, c }, options)
    : cameVectorKernel.which({ param, grad, state, c }, options);
}

function validate(param: tf.Variable, grad: tf.Tensor, state: CameState): void {
  if (!tf.util.arraysEqual(grad.shape, param.shape)) {
    throw new ShapeError(
      `cameUpdate: grad has shape [${grad.shape}] but param '${param.name}' has [${param.shape}]: pass the parameter's gradient`,
    );
  }
  const expected = stateShapes(param.shape);
  const keys = Object.keys(expected);
  const given = Object.keys(state);
  if (keys.length !== given.length || !keys.every((k) => given.includes(k))) {
    throw new InputError(
      `cameUpdate: the state of '${param.name}' [${param.shape}] must have exactly ${keys.join(', ')} (got ${given.join(', ') || 'nothing'}): create it with came().init`,
    );
  }
  for (const [k, shape] of Object.entries(expected)) {
    const t = ({ ...state } as Record<string, tf.Tensor>)[k]!;
    if (!tf.util.arraysEqual(t.shape, shape!)) {
      throw new ShapeError(
        `cameUpdate: state '${k}' of '${param.name}' has shape [${t.shape}], expected [${shape}] for a parameter of [${param.shape}]`,
      );
    }
    if (t.dtype !== 'float32') {
      throw new ShapeError(
        `cameUpdate: state '${k}' of '${param.name}' has dtype ${t.dtype}, expected float32`,
      );
    }
  }
  checkFloat32('cameUpdate', { param, grad });
}

/**
 * One CAME step (came_pytorch.CAME semantics) for `param`, updating `param` and `state` in place.
 *
 * `impl: 'auto'` (default) runs the active backend's native kernel (`KstarCameFactored` for rank ≥ 2,
 * `KstarCameVector` otherwise; cpu, wasm, webgpu), which writes every buffer in place and allocates no
 * parameter-sized temporary (only row/column vectors: B·m + B·n floats, plus a few scalars). It falls back to tfjs
 * ops + `assign` on other backends (tensorflow) and whenever a buffer is shared (`refCount !== 1`: a clone or a
 * tape-saved copy is alive), so other holders never see the write; that path holds about 4 parameter-sized
 * temporaries. The gradient is neither modified nor disposed. Hyper-parameters are assumed validated
 * (`resolveCameHparams`).
 */
export function cameUpdate(
  param: tf.Variable,
  grad: tf.Tensor,
  state: CameState,
  hp: CameHyper,
  options?: { impl?: 'auto' | 'fallback' },
): void {
  validate(param, grad, state);
  if (param.size === 0) return;
  const c = constants(hp, param.shape);
  if (isFactoredState(state)) cameFactoredKernel.run({ param, grad, state, c }, options);
  else cameVectorKernel.run({ param, grad, state, c }, options);
}
