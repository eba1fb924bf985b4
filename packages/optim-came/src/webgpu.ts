import {
  batchRowMeanWebGPU,
  type FlatProgram,
  factoredMomentWebGPU,
  flat,
  flatProgram,
  releaseAfterWebGPUWrite,
  type WebGPUKernelBackend,
} from '@kstar/kernels';
import type * as tf from '@tensorflow/tfjs-core';
import type { CameConsts } from './loops.ts';

/**
 * The CAME update as WGSL programs on the webgpu backend. Each dispatch writes ONE buffer (`result`): a state or
 * the parameter in place, or a small new vector; no buffer is ever bound as input and output at once (Dawn rejects
 * that asynchronously), so every program reads the old value through `result[index]` and the others as inputs.
 *
 * Factored parameter, B × [m, n] (rows r = b·m + i, columns c = b·n + j):
 *   1 vRow  (B·m threads, in place)  2 vCol (B·n threads, in place)  3 mean of vRow per batch → new [B]
 *   4 Σ_row U² (B·m threads) → new [B·m]   5 divisor max(1, RMS(U)/clip) (one workgroup of 256) → new [1]
 *   6 m (numel threads, in place)  7 resRow (B·m, in place)  8 resCol (B·n, in place)
 *   9 mean of resRow per batch → new [B]   10 p (numel threads, in place)
 * U is recomputed from g and the factors wherever it is needed: no parameter-sized temporary at all; the new
 * buffers are B + B·m + 1 + B floats, freed before the kernel returns.
 * Vector: 1 v (in place)  2 divisor (one workgroup) → new [1]  3 m (in place)  4 p (in place).
 */

/** The slice of the webgpu backend used here (WebGPUBackendLike + `disposeData` for the small temporaries). */
type Backend = WebGPUKernelBackend;

const f32 = (x: number) => ({ type: 'float32' as const, data: [x] });
const i32 = (x: number) => ({ type: 'int32' as const, data: [x] });

const REDUCE_WORKGROUP = 256;

/**
 * One workgroup of 256 threads sums `term(i)` for i < uniforms.count and writes the clipping divisor
 * max(1, sqrt(sum · invNumel) / clip) to result[0].
 */
function divisorProgram(key: string, inputs: string[], term: string): FlatProgram {
  return {
    variableNames: inputs,
    outputShape: [1],
    shaderKey: `kstar_${key}`,
    dispatchLayout: { x: [0] },
    dispatch: [1, 1, 1],
    workgroupSize: [REDUCE_WORKGROUP, 1, 1],
    size: false,
    uniforms: 'count : i32, invNumel : f32, clip : f32,',
    getUserCode: () => `
      var<workgroup> partial : array<f32, ${REDUCE_WORKGROUP}>;
      fn term(i : i32) -> f32 {
        ${term}
      }
      fn main(index : i32) {
        let lid = i32(localId.x);
        var s = 0.0;
        for (var i = lid; i < uniforms.count; i = i + ${REDUCE_WORKGROUP}) {
          s = s + term(i);
        }
        partial[lid] = s;
        workgroupBarrier();
        for (var k = ${REDUCE_WORKGROUP / 2}; k > 0; k = k >> 1u) {
          if (lid < k) {
            partial[lid] = partial[lid] + partial[lid + k];
          }
          workgroupBarrier();
        }
        if (lid == 0) {
          result[0] = max(1.0, sqrt(partial[0] * uniforms.invNumel) / uniforms.clip);
        }
      }
    `,
  };
}

type FactoredInputs = {
  param: tf.TensorInfo;
  grad: tf.TensorInfo;
  m: tf.TensorInfo;
  vRow: tf.TensorInfo;
  vCol: tf.TensorInfo;
  resRow: tf.TensorInfo;
  resCol: tf.TensorInfo;
};

/** Shared WGSL: element index → row r, column j, batch b. */
const COORDS = `let r = index / uniforms.nCols;
          let j = index - r * uniforms.nCols;
          let b = r / uniforms.nRows;`;

/**
 * WGSL: the start of a per-row sum over U = g · rsqrt(VR / mean VR) · rsqrt(VC) (one thread per row `index` of batch
 * `bb`): the row factor `rf`, the row's first element `base`, the batch's first column `cb` and the sum `s`.
 */
const ROW_SUM_PRELUDE = `let bb = index / uniforms.nRows;
          let rf = inverseSqrt(VR[index] / MR[bb]);
          let base = index * uniforms.nCols;
          let cb = bb * uniforms.nCols;
          var s = 0.0;`;

export function cameFactoredWebGPU(b: Backend, x: FactoredInputs, c: CameConsts): void {
  const { batch: B, rows: M, cols: N } = c;
  const numel = B * M * N;
  const G = flat(x.grad);
  const run = (
    program: FlatProgram,
    inputs: tf.TensorInfo[],
    uniforms: { type: 'float32' | 'int32'; data: number[] }[],
    out?: tf.TensorInfo,
  ) => b.runWebGPUProgram(program, inputs, 'float32', uniforms, out);
  const temps: tf.TensorInfo[] = [];

  // 1–3. Second-moment factors, in place, and the row means per batch.
  const batchMean = (rowStat: tf.TensorInfo) => {
    const out = batchRowMeanWebGPU(b, rowStat, B, M);
    temps.push(out);
    return out;
  };
  const MR = factoredMomentWebGPU(
    b,
    { grad: x.grad, row: x.vRow, col: x.vCol },
    { B, m: M, n: N },
    c.beta2,
    c.eps1,
  );
  temps.push(MR);
  const VR = flat(x.vRow);
  const VC = flat(x.vCol);

  // 4–5. RMS of U → clipping divisor D = max(1, RMS(U)/clip).
  const rowSq = run(
    flatProgram({
      key: 'came_rowsq',
      size: B * M,
      inputs: ['G', 'VR', 'VC', 'MR'],
      uniforms: 'nRows : i32, nCols : i32,',
      body: `${ROW_SUM_PRELUDE}
          for (var j = 0; j < uniforms.nCols; j = j + 1) {
            let u = G[base + j] * (rf * inverseSqrt(VC[cb + j]));
            s = s + u * u;
          }
          result[index] = s;`,
    }),
    [G, VR, VC, MR],
    [i32(M), i32(N)],
  );
  temps.push(rowSq);
  const D = run(
    divisorProgram('came_divisor_rows', ['S'], 'return S[i];'),
    [rowSq],
    [i32(B * M), f32(1 / numel), f32(c.clipThreshold)],
  );
  temps.push(D);

  // 6. Momentum of the clipped update, in place.
  const U = 'G[index] * (inverseSqrt(VR[r] / MR[b]) * inverseSqrt(VC[b * uniforms.nCols + j])) / D[0]';
  run(
    flatProgram({
      key: 'came_m_factored',
      size: numel,
      inputs: ['G', 'VR', 'VC', 'MR', 'D'],
      uniforms: 'nRows : i32, nCols : i32, beta : f32, omb : f32,',
      body: `${COORDS}
          let u = ${U};
          result[index] = uniforms.beta * result[index] + uniforms.omb * u;`,
    }),
    [G, VR, VC, MR, D],
    [i32(M), i32(N), f32(c.beta1), f32(c.oneMinusBeta1)],
    flat(x.m),
  );

  // 7–8. Instability (U − m)² + ε2 reduced to rows and columns, in place.
  const resInputs = [G, VR, VC, MR, D, flat(x.m)];
  const resUniforms = [i32(M), i32(N), f32(c.beta3), f32(c.oneMinusBeta3), f32(c.eps2)];
  const resDecl = 'nRows : i32, nCols : i32, beta : f32, omb : f32, eps : f32,';
  run(
    flatProgram({
      key: 'came_resrow',
      size: B * M,
      inputs: ['G', 'VR', 'VC', 'MR', 'D', 'MOM'],
      uniforms: resDecl,
      body: `${ROW_SUM_PRELUDE}
          for (var j = 0; j < uniforms.nCols; j = j + 1) {
            let u = G[base + j] * (rf * inverseSqrt(VC[cb + j])) / D[0];
            let e = u - MOM[base + j];
            s = s + (e * e + uniforms.eps);
          }
          result[index] = uniforms.beta * result[index] + uniforms.omb * (s / f32(uniforms.nCols));`,
    }),
    resInputs,
    resUniforms,
    flat(x.resRow),
  );
  run(
    flatProgram({
      key: 'came_rescol',
      size: B * N,
      inputs: ['G', 'VR', 'VC', 'MR', 'D', 'MOM'],
      uniforms: resDecl,
      body: `let bb = index / uniforms.nCols;
          let j = index - bb * uniforms.nCols;
          let cf = inverseSqrt(VC[index]);
          var s = 0.0;
          for (var i = 0; i < uniforms.nRows; i = i + 1) {
            let r = bb * uniforms.nRows + i;
            let k = r * uniforms.nCols + j;
            let u = G[k] * (inverseSqrt(VR[r] / MR[bb]) * cf) / D[0];
            let e = u - MOM[k];
            s = s + (e * e + uniforms.eps);
          }
          result[index] = uniforms.beta * result[index] + uniforms.omb * (s / f32(uniforms.nRows));`,
    }),
    resInputs,
    resUniforms,
    flat(x.resCol),
  );
  const MRR = batchMean(x.resRow);

  // 10. Parameter, in place: p ← p − wd·lr·p − lr · m · rsqrt(resRow / mean)[row] · rsqrt(resCol)[col].
  run(
    flatProgram({
      key: 'came_p_factored',
      size: numel,
      inputs: ['MOM', 'RR', 'RC', 'MRR'],
      uniforms: 'nRows : i32, nCols : i32, lr : f32, wdLr : f32,',
      body: `${COORDS}
          let step = MOM[index] * (inverseSqrt(RR[r] / MRR[b]) * inverseSqrt(RC[b * uniforms.nCols + j]));
          let p0 = result[index];
          result[index] = (p0 - uniforms.wdLr * p0) - uniforms.lr * step;`,
    }),
    [flat(x.m), flat(x.resRow), flat(x.resCol), MRR],
    [i32(M), i32(N), f32(c.lr), f32(c.wdLr)],
    flat(x.param),
  );

  // A CPU copy cached by an earlier read would now be stale.
  releaseAfterWebGPUWrite(b, [x.param, x.m, x.vRow, x.vCol, x.resRow, x.resCol], temps);
}

type VectorInputs = { param: tf.TensorInfo; grad: tf.TensorInfo; m: tf.TensorInfo; v: tf.TensorInfo };

export function cameVectorWebGPU(b: Backend, x: VectorInputs, c: CameConsts): void {
  const n = c.cols;
  const G = flat(x.grad);
  const V = flat(x.v);
  b.runWebGPUProgram(
    flatProgram({
      key: 'came_v',
      size: n,
      inputs: ['G'],
      uniforms: 'beta : f32, omb : f32, eps : f32,',
      body: `let g = G[index];
          result[index] = uniforms.beta * result[index] + uniforms.omb * (g * g + uniforms.eps);`,
    }),
    [G],
    'float32',
    [f32(c.beta2), f32(c.oneMinusBeta2), f32(c.eps1)],
    V,
  );
  const D = b.runWebGPUProgram(
    divisorProgram('came_divisor_vec', ['G', 'V'], 'let u = G[i] * inverseSqrt(V[i]); return u * u;'),
    [G, V],
    'float32',
    [i32(n), f32(1 / n), f32(c.clipThreshold)],
  );
  b.runWebGPUProgram(
    flatProgram({
      key: 'came_m_vec',
      size: n,
      inputs: ['G', 'V', 'D'],
      uniforms: 'beta : f32, omb : f32,',
      body: `let u = G[index] * inverseSqrt(V[index]) / D[0];
          result[index] = uniforms.beta * result[index] + uniforms.omb * u;`,
    }),
    [G, V, D],
    'float32',
    [f32(c.beta1), f32(c.oneMinusBeta1)],
    flat(x.m),
  );
  b.runWebGPUProgram(
    flatProgram({
      key: 'came_p_vec',
      size: n,
      inputs: ['MOM'],
      uniforms: 'lr : f32, wdLr : f32,',
      body: `let p0 = result[index];
          result[index] = (p0 - uniforms.wdLr * p0) - uniforms.lr * MOM[index];`,
    }),
    [flat(x.m)],
    'float32',
    [f32(c.lr), f32(c.wdLr)],
    flat(x.param),
  );
  releaseAfterWebGPUWrite(b, [x.param, x.m, x.v], [D]);
}
