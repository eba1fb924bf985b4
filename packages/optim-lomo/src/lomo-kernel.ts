import {
  type CpuKernel,
  canWriteInPlace,
  checkFloat32,
  checkShapeOfParam,
  cpuFloats,
  defineKernel,
  flat,
  flatProgram,
  inPlaceOutput,
  invalidateWasmCaches,
  type WasmKernel,
  type WebGPUKernel,
} from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';

/**
 * The fused LOMO (SGD) update `KstarLomo`, in place, for a parameter of any shape:
 *
 *   g' ← clamp(g, −clipValue, clipValue) · gradScale       (clipValue off: no clamp; gradScale = the global-norm coef)
 *   p  ← p · (1 − lr·weightDecay) − lr · g'
 *
 * Native kernels (cpu, wasm: JS loops over the float32 buffers; webgpu: one WGSL dispatch) write p in place and
 * allocate nothing. The fallback (tfjs ops + `assign`) holds one or two parameter-sized temporaries.
 */
export interface LomoStepHyper {
  lr: number;
  weightDecay: number;
  /** Multiplier of the (clamped) gradient: min(1, clipGradNorm/(‖g‖+1e-6)), or 1. */
  gradScale: number;
  /** Element clamp of the gradient, or null. */
  clipValue: number | null;
}

export interface LomoKernelArgs {
  param: tf.Variable;
  grad: tf.Tensor;
  hp: LomoStepHyper;
}

/** A clamp bound that clamps nothing finite (WGSL has no portable infinity constant). */
export const NO_CLIP = 3.4e38;

interface Attrs {
  lr: number;
  decay: number;
  gscale: number;
  gclip: number;
}

const attrsOf = (hp: LomoStepHyper): Attrs => ({
  lr: hp.lr,
  decay: 1 - hp.lr * hp.weightDecay,
  gscale: hp.gradScale,
  gclip: hp.clipValue ?? NO_CLIP,
});

type Inputs = { param: tf.TensorInfo; grad: tf.TensorInfo };

function updateArrays(p: Float32Array, g: Float32Array, c: Attrs): void {
  const { lr, decay, gscale, gclip } = c;
  for (let i = 0; i < p.length; i++) {
    let gv = g[i]!;
    if (gv > gclip) gv = gclip;
    else if (gv < -gclip) gv = -gclip;
    p[i] = p[i]! * decay - lr * (gv * gscale);
  }
}

const lomoCpu: CpuKernel<Inputs, Attrs> = ({ inputs: ins, backend: b, attrs }) => {
  updateArrays(cpuFloats(b, ins.param), cpuFloats(b, ins.grad), attrs);
  return inPlaceOutput(b, ins.param);
};

const lomoWasm: WasmKernel<Inputs, Attrs> = ({ inputs: ins, backend: b, attrs }) => {
  updateArrays(
    b.typedArrayFromHeap(ins.param) as Float32Array,
    b.typedArrayFromHeap(ins.grad) as Float32Array,
    attrs,
  );
  // The wasm backend caches XNNPACK operators with packed weights per tensor id: drop them.
  invalidateWasmCaches(b, ins.param);
  return inPlaceOutput(b, ins.param);
};

const lomoWebGPU: WebGPUKernel<Inputs, Attrs> = ({ inputs: ins, backend: b, attrs: c }) => {
  const f32 = (x: number) => ({ type: 'float32' as const, data: [x] });
  b.runWebGPUProgram(
    flatProgram({
      key: 'lomo_sgd',
      size: tf.util.sizeFromShape(ins.param.shape),
      inputs: ['G'],
      uniforms: 'lr : f32, decay : f32, gscale : f32, gclip : f32,',
      body: `let g = clamp(G[index], -uniforms.gclip, uniforms.gclip) * uniforms.gscale;
          result[index] = result[index] * uniforms.decay - uniforms.lr * g;`,
    }),
    [flat(ins.grad)],
    'float32',
    [f32(c.lr), f32(c.decay), f32(c.gscale), f32(c.gclip)],
    flat(ins.param),
  );
  // A CPU copy cached by an earlier read would now be stale.
  b.tensorMap.get(ins.param.dataId).values = null;
  return inPlaceOutput(b, ins.param);
};

/** Portable path: tfjs ops + `assign`. */
function lomoFallback({ param, grad, hp }: LomoKernelArgs): void {
  tf.tidy(() => {
    let g: tf.Tensor = grad;
    if (hp.clipValue != null) g = tf.clipByValue(g, -hp.clipValue, hp.clipValue);
    if (hp.gradScale !== 1) g = tf.mul(g, hp.gradScale);
    const decayed = hp.weightDecay !== 0 ? tf.mul(param, 1 - hp.lr * hp.weightDecay) : param;
    param.assign(tf.sub(decayed, tf.mul(g, hp.lr)));
  });
}

/** In place only when nothing else holds p's buffer (a clone, a tape-saved tensor) and g is another buffer. */
function canRunInPlace({ param, grad }: LomoKernelArgs, backend: tf.KernelBackend): boolean {
  return canWriteInPlace([param], [grad], backend);
}

export const lomoKernel = defineKernel<LomoKernelArgs, void, Inputs, Attrs>({
  name: 'KstarLomo',
  backends: { cpu: lomoCpu, wasm: lomoWasm, webgpu: lomoWebGPU },
  invoke: ({ param, grad, hp }) => ({
    inputs: { param, grad },
    attrs: attrsOf(hp),
  }),
  finish: (outs) => tf.dispose(outs),
  fallback: lomoFallback,
  canRunNative: canRunInPlace,
});

export function checkParamGrad(who: string, param: tf.Variable, grad: tf.Tensor): void {
  checkShapeOfParam(who, param, { grad }, 'pass the gradient of this parameter');
  checkFloat32(who, { param, grad });
}

/** One LOMO update of `param` in place (`KstarLomo` on cpu, wasm, webgpu; tfjs ops elsewhere). `grad` is kept. */
export function lomoUpdate(
  param: tf.Variable,
  grad: tf.Tensor,
  hp: LomoStepHyper,
  options?: { impl?: 'auto' | 'fallback' },
): void {
  checkParamGrad('lomoUpdate', param, grad);
  if (param.size === 0) return;
  lomoKernel.run({ param, grad, hp }, options);
}
