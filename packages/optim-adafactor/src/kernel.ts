import { InputError, ShapeError } from '@kstar/core';
import {
  type CpuKernel,
  canWriteInPlace,
  checkFloat32,
  checkShapeOfParam,
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

interface Arrays {
  p: Float32Array;
  g: Float32Array;
  row?: Float32Array;
  col?: Float32Array;
  v?: Float32Array;
  m?: Float32Array;
}

/** The shared update of the cpu and wasm kernels: float64 arithmetic, float32 storage, in place. */
function updateArrays(a: Arrays, shape: readonly number[], c: Attrs): void {
  const { p, g } = a;
  const N = p.length;
  const b2 = c.beta2t;
  const omb2 = 1 - c.beta2t;
  let alpha = c.rho;
  if (c.scale) {
    let sp = 0;
    for (let i = 0; i < N; i++) sp += p[i]! * p[i]!;
    alpha = c.rho * Math.max(c.eps2, Math.sqrt(sp / N));
  }
  let sumU2 = 0;
  // factor(i) = the multiplier of g[i] in U; computed twice (RMS(U), then the update), never stored.
  let forEachU: (f: (i: number, u: number) => void) => void;
  if (a.row != null && a.col != null) {
    const { B, m, n } = factoredDims(shape);
    const f = factoredMomentArrays(g, a.row, a.col, { B, m, n }, b2, c.eps1);
    forEachU = (fn) => {
      for (let r = 0; r < B * m; r++) {
        const cb = Math.floor(r / m) * n;
        const base = r * n;
        for (let j = 0; j < n; j++) fn(base + j, g[base + j]! * f.row[r]! * f.col[cb + j]!);
      }
    };
  } else {
    const v = a.v!;
    for (let i = 0; i < N; i++) {
      const gv = g[i]!;
      v[i] = b2 * v[i]! + omb2 * (gv * gv + c.eps1);
    }
    forEachU = (f) => {
      for (let i = 0; i < N; i++) f(i, g[i]! / Math.sqrt(v[i]!));
    };
  }
  forEachU((_, u) => {
    sumU2 += u * u;
  });
  const k = alpha / Math.max(1, Math.sqrt(sumU2 / N) / c.clip);
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

const STATE_INPUTS = ['row', 'col', 'v', 'm'] as const;

function outputs(b: { incRef(dataId: tf.DataId): void }, ins: Inputs): tf.TensorInfo[] {
  const out = [inPlaceOutput(b, ins.param)];
  for (const k of STATE_INPUTS) if (ins[k] != null) out.push(inPlaceOutput(b, ins[k]));
  return out;
}

const adafactorCpu: CpuKernel<Inputs, Attrs> = ({ inputs: ins, backend: b, attrs }) => {
  const arr = (t: tf.TensorInfo | undefined) =>
    t == null ? undefined : (b.data.get(t.dataId).values as Float32Array);
  updateArrays(
    {
      p: arr(ins.param)!,
      g: arr(ins.grad)!,
      row: arr(ins.row),
      col: arr(ins.col),
      v: arr(ins.v),
      m: arr(ins.m),
    },
    ins.param.shape,
    attrs,
  );
  return outputs(b, ins);
};

const adafactorWasm: WasmKernel<Inputs, Attrs> = ({ inputs: ins, backend: b, attrs }) => {
  // Nothing is allocated on the wasm heap in this kernel, so the views stay valid.
  const view = (t: tf.TensorInfo | undefined) =>
    t == null ? undefined : (b.typedArrayFromHeap(t) as Float32Array);
  updateArrays(
    {
      p: view(ins.param)!,
      g: view(ins.grad)!,
      row: view(ins.row),
      col: view(ins.col),
      v: view(ins.v),
      m: view(ins.m),
    },
    ins.param.shape,
    attrs,
  );
  // The wasm backend caches packed weights per tensor id: drop them, or matMuls keep the old weights.
  for (const t of [ins.param, ins.row, ins.col, ins.v, ins.m]) if (t != null) invalidateWasmCaches(b, t);
  return outputs(b, ins);
};

type Uniform = { type: 'float32' | 'int32'; data: number[] };
const f32 = (x: number): Uniform => ({ type: 'float32', data: [x] });
const i32 = (x: number): Uniform => ({ type: 'int32', data: [x] });

/** WGSL statements defining `u` (the unclipped, unscaled update U at flat index `idx`). */
const U_FACTORED = `let row = idx / uniforms.nCols; let col = idx - row * uniforms.nCols; let bt = row / uniforms.nRows;
          let u = G[idx] * inverseSqrt(Rw[row] / Rm[bt]) * inverseSqrt(Cl[bt * uniforms.nCols + col]);`;
const U_VECTOR = 'let u = G[idx] * inverseSqrt(V[idx]);';

/**
 * The webgpu kernel: a handful of dispatches, each writing only its own `result` binding (a buffer is never bound
 * as both input and output: Dawn rejects that asynchronously), in place for p and the state.
 * Factored: R (one thread per row), C (one per column), row means (one per batch), partial sums of U² (and p²)
 * per 256 elements, the scalars [alpha, k] (one thread), then [M and] p. Vector: V, partial sums, scalars, [M,] p.
 */
const adafactorWebGPU: WebGPUKernel<Inputs, Attrs> = ({ inputs: ins, backend: b, attrs: c }) => {
  const N = tf.util.sizeFromShape(ins.param.shape);
  const run = (program: FlatProgram, progInputs: tf.TensorInfo[], uniforms: Uniform[], out?: tf.TensorInfo) =>
    b.runWebGPUProgram(program, progInputs.map(flat), 'float32', uniforms, out && flat(out));
  const temps: tf.TensorInfo[] = [];
  const ema = [f32(c.eps1), f32(c.beta2t), f32(1 - c.beta2t)];
  const emaUniforms = 'eps1 : f32, b2t : f32, omb2t : f32,';

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
    );
    temps.push(rowMean);
    uInputs = [ins.grad, ins.row!, ins.col!, rowMean];
    uNames = ['G', 'Rw', 'Cl', 'Rm'];
    uExpr = U_FACTORED;
    uUniforms = 'nRows : i32, nCols : i32,';
    uValues = [i32(m), i32(n)];
  } else {
    run(
      flatProgram({
        key: 'adafactor_v',
        size: N,
        inputs: ['G'],
        uniforms: emaUniforms,
        body: `let g = G[index];
          result[index] = uniforms.b2t * result[index] + uniforms.omb2t * (g * g + uniforms.eps1);`,
      }),
      [ins.grad],
      ema,
      ins.v,
    );
    uInputs = [ins.grad, ins.v!];
    uNames = ['G', 'V'];
    uExpr = U_VECTOR;
    uUniforms = '';
    uValues = [];
  }
  const kind = factored ? 'f' : 'v';
  const update = {
    key: `adafactor_${kind}`,
    inputs: uInputs,
    names: uNames,
    expr: uExpr,
    uniforms: uUniforms,
    values: uValues,
  };
  const scalars = updateScaleWebGPU(b, ins.param, update, {
    rho: c.rho,
    eps2: c.eps2,
    clip: c.clip,
    scaleByParam: c.scale !== 0,
  });
  temps.push(scalars);
  if (ins.m != null) {
    run(
      flatProgram({
        key: `adafactor_m_${kind}`,
        size: N,
        inputs: [...uNames, 'Sc'],
        uniforms: `${uUniforms} beta1 : f32, omb1 : f32,`,
        body: `let idx = index; ${uExpr}
          result[idx] = uniforms.beta1 * result[idx] + uniforms.omb1 * (Sc[1] * u);`,
      }),
      [...uInputs, scalars],
      [...uValues, f32(c.beta1), f32(1 - c.beta1)],
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
        inputs: [...uNames, 'Sc'],
        uniforms: `${uUniforms} wd : f32,`,
        body: `let idx = index; ${uExpr}
          let p = result[idx];
          result[idx] = (p - uniforms.wd * Sc[0] * p) - Sc[1] * u;`,
      }),
      [...uInputs, scalars],
      [...uValues, f32(c.weightDecay)],
      ins.param,
    );
  }
  for (const t of temps) b.disposeData(t.dataId);
  // A CPU copy cached by an earlier read would now be stale.
  b.tensorMap.get(ins.param.dataId).values = null;
  for (const k of STATE_INPUTS) if (ins[k] != null) b.tensorMap.get(ins[k].dataId).values = null;
  return outputs(b, ins);
};

const rms = (x: tf.Tensor): tf.Tensor => tf.sqrt(tf.mean(tf.square(x)));

/** Portable path (tfjs ops + `assign`), HF's order of operations; up to 3 parameter-sized temporaries at once. */
function adafactorFallback({ param, grad, state, hp }: AdafactorKernelArgs): void {
  const { beta2t } = hp;
  tf.tidy(() => {
    // RMS(p) before anything changes p.
    const alpha = hp.scaleParameter ? tf.mul(tf.maximum(rms(param), hp.eps2), hp.rho) : tf.scalar(hp.rho);
    let update: tf.Tensor;
    if (state.exp_avg_sq_row != null && state.exp_avg_sq_col != null) {
      const row = state.exp_avg_sq_row;
      const col = state.exp_avg_sq_col;
      const u = tf.add(tf.square(grad), hp.eps1);
      factoredMomentOps(row, col, u, beta2t);
      u.dispose();
      update = tf.tidy(() => tf.mul(factoredRsqrtOps(row, col), grad));
    } else {
      const v = state.exp_avg_sq!;
      v.assign(
        tf.tidy(() => tf.add(tf.mul(v, beta2t), tf.mul(tf.add(tf.square(grad), hp.eps1), 1 - beta2t))),
      );
      update = tf.mul(tf.rsqrt(v), grad);
    }
    const k = tf.div(alpha, tf.maximum(tf.div(rms(update), hp.clipThreshold), 1));
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
  const { exp_avg_sq_row, exp_avg_sq_col, exp_avg_sq, exp_avg } = state;
  return canWriteInPlace([param, exp_avg_sq_row, exp_avg_sq_col, exp_avg_sq, exp_avg], [grad], backend);
}

export const adafactorKernel = defineKernel<AdafactorKernelArgs, void, Inputs, Attrs>({
  name: 'KstarAdafactor',
  backends: { cpu: adafactorCpu, wasm: adafactorWasm, webgpu: adafactorWebGPU },
  invoke: ({ param, grad, state, hp }) => {
    const inputs: tf.NamedTensorMap = { param, grad };
    if (state.exp_avg_sq_row != null) inputs.row = state.exp_avg_sq_row;
    if (state.exp_avg_sq_col != null) inputs.col = state.exp_avg_sq_col;
    if (state.exp_avg_sq != null) inputs.v = state.exp_avg_sq;
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
  const expected = stateShapes(param.shape, withMomentum);
  for (const key of ['exp_avg_sq_row', 'exp_avg_sq_col', 'exp_avg_sq', 'exp_avg'] as const) {
    const want = expected[key];
    const got = state[key];
    if (want == null && got == null) continue;
    if (want == null || got == null) {
      throw new InputError(
        `adafactorUpdate: the state of '${param.name}' ${got == null ? 'lacks' : 'has an unexpected'} '${key}' (a [${param.shape}] parameter${withMomentum ? ' with beta1' : ''} needs ${Object.keys(expected).join(', ')}): create it with adafactor().init or for the same beta1`,
      );
    }
    if (!tf.util.arraysEqual(got.shape, want) || got.dtype !== 'float32') {
      throw new ShapeError(
        `adafactorUpdate: state '${key}' of '${param.name}' is ${got.dtype}[${got.shape}], expected float32[${want}] for a [${param.shape}] parameter`,
      );
    }
  }
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
