import type * as tf from '@tensorflow/tfjs-core';
import { flat, flatProgram, type WebGPUBackendLike } from './wgsl.ts';

/** Elements per partial sum of the whole-tensor reductions (RMS(U), RMS(p)). */
const CHUNK = 256;

type Uniform = { type: 'float32' | 'int32'; data: number[] };
const f32 = (x: number): Uniform => ({ type: 'float32', data: [x] });
const i32 = (x: number): Uniform => ({ type: 'int32', data: [x] });

/** How a kernel's WGSL computes the unclipped update U at flat index `idx`, and what it reads. */
export interface WgslUpdate {
  /** Part of the shader key: one per distinct `expr` (e.g. `adafactor_f`). */
  readonly key: string;
  /** The tensors bound as `names` (same order). */
  readonly inputs: readonly tf.TensorInfo[];
  readonly names: readonly string[];
  /** WGSL statements defining `u` from `idx`. */
  readonly expr: string;
  readonly uniforms: string;
  readonly values: readonly Uniform[];
}

/**
 * webgpu: the two scalars of Adafactor-style updates (Adafactor, AdaLomo) as a new [2] tensor the caller frees:
 * [alpha, k] with alpha = rho · (scaleByParam ? max(eps2, RMS(p)) : 1) (RMS(p) of `param` as it is now) and
 * k = alpha / max(1, RMS(U) / clip). U is recomputed per element from `update`, never stored: the temporaries
 * are ⌈numel/256⌉ partial sums of U² (and of p²).
 */
export function updateScaleWebGPU(
  backend: WebGPUBackendLike & { disposeData(dataId: tf.DataId): boolean },
  param: tf.TensorInfo,
  update: WgslUpdate,
  c: { rho: number; eps2: number; clip: number; scaleByParam: boolean },
): tf.TensorInfo {
  let N = 1;
  for (const d of param.shape) N *= d;
  const nChunks = Math.ceil(N / CHUNK);
  const chunkLoop = (expr: string) => `var s = 0.0;
          for (var k = 0; k < ${CHUNK}; k++) {
            let idx = index * ${CHUNK} + k;
            if (idx >= uniforms.total) { break; }
            ${expr}
          }
          result[index] = s;`;
  const run = (
    program: ReturnType<typeof flatProgram>,
    inputs: readonly tf.TensorInfo[],
    values: Uniform[],
  ) => backend.runWebGPUProgram(program, inputs.map(flat), 'float32', values);
  const sums = [
    run(
      flatProgram({
        key: `${update.key}_usq`,
        size: nChunks,
        inputs: [...update.names],
        uniforms: `${update.uniforms} total : i32,`,
        body: chunkLoop(`${update.expr} s = s + u * u;`),
      }),
      update.inputs,
      [...update.values, i32(N)],
    ),
  ];
  if (c.scaleByParam) {
    sums.push(
      run(
        flatProgram({
          key: 'update_scale_psq',
          size: nChunks,
          inputs: ['P'],
          uniforms: 'total : i32,',
          body: chunkLoop('let x = P[idx]; s = s + x * x;'),
        }),
        [param],
        [i32(N)],
      ),
    );
  }
  const scalars = run(
    flatProgram({
      key: `update_scale_${c.scaleByParam ? 'scaled' : 'plain'}`,
      size: 2,
      inputs: c.scaleByParam ? ['Us', 'Ps'] : ['Us'],
      uniforms: 'nChunks : i32, invNumel : f32, rho : f32, eps2 : f32, clip : f32,',
      body: `if (index == 0) {
            var su = 0.0;
            for (var i = 0; i < uniforms.nChunks; i++) { su = su + Us[i]; }
            var alpha = uniforms.rho;
            ${
              c.scaleByParam
                ? `var sp = 0.0;
            for (var i = 0; i < uniforms.nChunks; i++) { sp = sp + Ps[i]; }
            alpha = uniforms.rho * max(uniforms.eps2, sqrt(sp * uniforms.invNumel));`
                : ''
            }
            result[0] = alpha;
            result[1] = alpha / max(1.0, sqrt(su * uniforms.invNumel) / uniforms.clip);
          }`,
    }),
    sums,
    [i32(nChunks), f32(1 / N), f32(c.rho), f32(c.eps2), f32(c.clip)],
  );
  for (const t of sums) backend.disposeData(t.dataId);
  return scalars;
}
