import type { FusedBackend } from './row-program.ts';
import type { FlatProgram, WebGPUBackendLike } from './wgsl.ts';

/**
 * max |x| of a float32 tensor on the GPU, left there as a 1-element tensor (no read back): the per-tensor scale of
 * the f16-mixed matmul (webgpu-matmul-f16-program.ts). Two programs: `ABSMAX_GROUPS` workgroups each reduce a
 * grid-strided share to one partial, then one workgroup reduces the partials. (A NaN in x may or may not show in
 * the max, as WGSL's `max` leaves it open; it reaches the product through the operand either way.)
 */
const THREADS = 256;
export const ABSMAX_GROUPS = 256;

function reduceProgram(key: string, outputs: number, read: string, groups: number): FlatProgram {
  return {
    variableNames: ['X'],
    outputShape: [outputs],
    shaderKey: `kstar_absmax_${key}`,
    dispatchLayout: { x: [0] },
    dispatch: [groups, 1, 1],
    workgroupSize: [THREADS, 1, 1],
    size: false,
    uniforms: 'count : i32,',
    getUserCode: () => `
      var<workgroup> partial : array<f32, ${THREADS}>;
      fn main(index : i32) {
        let t = i32(localId.x);
        var m = 0.0;
        for (var i = i32(workgroupId.x) * ${THREADS} + t; i < uniforms.count; i = i + ${groups * THREADS}) {
          m = max(m, ${read});
        }
        partial[t] = m;
        workgroupBarrier();
        for (var s = ${THREADS / 2}; s > 0; s = s / 2) {
          if (t < s) { partial[t] = max(partial[t], partial[t + s]); }
          workgroupBarrier();
        }
        if (t == 0) { result[workgroupId.x] = partial[0]; }
      }
    `,
  };
}

/** The 1-element tensor max |x| of `x` (a flat float32 TensorInfo); dispose it with `backend.disposeData`. */
export function absMaxOnDevice(
  backend: WebGPUBackendLike,
  x: { dataId: object; shape: number[]; dtype: 'float32' },
) {
  const size = x.shape.reduce((p, d) => p * d, 1);
  const groups = Math.max(1, Math.min(ABSMAX_GROUPS, Math.ceil(size / THREADS)));
  const partials = backend.runWebGPUProgram(
    reduceProgram(`partial_${groups}`, groups, 'abs(X[i])', groups),
    [x],
    'float32',
    [{ type: 'int32', data: [size] }],
  );
  const out = backend.runWebGPUProgram(reduceProgram('final', 1, 'X[i]', 1), [partials], 'float32', [
    { type: 'int32', data: [groups] },
  ]);
  (backend as unknown as FusedBackend).disposeData(partials.dataId);
  return out;
}
