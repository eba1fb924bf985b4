import * as tf from '@tensorflow/tfjs-core';
import { defineKernel } from './define-kernel.ts';
import { chain, type FusedBackend, rowProgram, rowUniforms, shaped } from './row-program.ts';
import { flat, flatProgram } from './wgsl.ts';

/**
 * LayerNorm over the last axis of `x` [N, D]: `y = (x − μ)·rstd·γ + β`, `rstd = 1/√(σ² + ε)`, returning μ and rstd
 * ([N, 1]) for the backward. Backward (`layerNormGradKernel`), with `x̂ = (x − μ)·rstd` and `g = dy·γ`:
 * `dx = rstd·(g − mean(g) − x̂·mean(g·x̂))`, `dγ = Σ_n dy·x̂`, `dβ = Σ_n dy`.
 * WebGPU: forward = 1 row-reduction dispatch (μ, rstd) + 3 element-wise; backward = 1 row reduction + dx + a
 * column reduction in row chunks of `LN_CHUNK` + 2 chunk sums (the tfjs-ops fallback: 9 ops forward, 13 backward).
 */
export interface LayerNormArgs {
  x: tf.Tensor; // [N, D]
  gamma: tf.Tensor; // [D]
  beta: tf.Tensor; // [D]
  eps: number;
}
export interface LayerNormResult {
  y: tf.Tensor; // [N, D]
  mean: tf.Tensor; // [N, 1]
  rstd: tf.Tensor; // [N, 1]
}
export interface LayerNormGradArgs {
  x: tf.Tensor; // [N, D]
  gamma: tf.Tensor; // [D]
  mean: tf.Tensor; // [N, 1]
  rstd: tf.Tensor; // [N, 1]
  dy: tf.Tensor; // [N, D]
}
export interface LayerNormGradResult {
  dx: tf.Tensor; // [N, D]
  dgamma: tf.Tensor; // [D]
  dbeta: tf.Tensor; // [D]
}

/** Rows per chunk of the dγ/dβ column reduction (N/LN_CHUNK partial sums, then one sum over chunks). */
export const LN_CHUNK = 64;

function layerNormOps({ x, gamma, beta, eps }: LayerNormArgs): LayerNormResult {
  const mean = tf.mean(x, -1, true); // [N, 1]
  const xc = tf.sub(x, mean); // [N, D]
  const rstd = chain(
    chain(
      chain(tf.square(xc), (t) => tf.mean(t, -1, true)),
      (t) => tf.add(t, eps),
    ),
    (t) => tf.rsqrt(t),
  ); // [N, 1]
  const y = chain(
    chain(
      chain(xc, (t) => tf.mul(t, rstd)),
      (t) => tf.mul(t, gamma),
    ),
    (t) => tf.add(t, beta),
  ); // [N, D]
  return { y, mean, rstd };
}

function layerNormGradOps({ x, gamma, mean, rstd, dy }: LayerNormGradArgs): LayerNormGradResult {
  const xhat = chain(tf.sub(x, mean), (t) => tf.mul(t, rstd)); // [N, D]
  const dgamma = chain(tf.mul(dy, xhat), (t) => tf.sum(t, 0)); // [D]
  const dbeta = tf.sum(dy, 0); // [D]
  const gy = tf.mul(dy, gamma); // [N, D]
  const meanG = tf.mean(gy, -1, true); // [N, 1]
  const meanGX = chain(tf.mul(gy, xhat), (t) => tf.mean(t, -1, true)); // [N, 1]
  const xm = chain(xhat, (t) => tf.mul(t, meanGX)); // [N, D]
  const dx = chain(
    chain(
      chain(gy, (t) => tf.sub(t, meanG)),
      (t) => tf.sub(t, xm),
    ),
    (t) => tf.mul(t, rstd),
  ); // [N, D]
  xm.dispose();
  meanG.dispose();
  meanGX.dispose();
  return { dx, dgamma, dbeta };
}

/** Element `k` (0 or 1) of each row of a [N, 2] stats buffer, as [N]. */
function pick(b: FusedBackend, stats: tf.TensorInfo, n: number, k: 0 | 1): tf.TensorInfo {
  const program = flatProgram({
    key: `ln_pick${k}`,
    size: n,
    inputs: ['S'],
    body: `result[index] = S[2 * index + ${k}];`,
  });
  return shaped(b.runWebGPUProgram(program, [stats], 'float32'), [n, 1]);
}

export const layerNormKernel = defineKernel<
  LayerNormArgs,
  LayerNormResult,
  { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo },
  { eps: number }
>({
  name: 'KstarLayerNorm',
  backends: {
    webgpu: ({ inputs: { x, gamma, beta }, backend: b, attrs: { eps } }) => {
      const D = x.shape[x.shape.length - 1]!;
      const N = tf.util.sizeFromShape(x.shape) / D;
      // Two-pass mean and variance in one workgroup per row: stats [N, 2] = (μ, rstd).
      const stats = b.runWebGPUProgram(
        rowProgram({
          key: 'ln_stats',
          rows: N,
          cols: D,
          outputSize: 2 * N,
          inputs: ['X'],
          uniforms: 'eps : f32,',
          body: `let base = r * cols;
            var s = 0.0;
            for (var c = tid; c < cols; c += kWG) { s += X[base + c]; }
            let mu = wgSum(s) / f32(cols);
            var q = 0.0;
            for (var c = tid; c < cols; c += kWG) { let d = X[base + c] - mu; q += d * d; }
            let variance = wgSum(q) / f32(cols);
            if (valid && tid == 0) {
              result[2 * row] = mu;
              result[2 * row + 1] = inverseSqrt(variance + uniforms.eps);
            }`,
        }),
        [flat(x)],
        'float32',
        rowUniforms(N, D, eps),
      );
      const y = b.runWebGPUProgram(
        flatProgram({
          key: 'ln_y',
          size: N * D,
          inputs: ['X', 'S', 'G', 'B'],
          uniforms: 'cols : i32,',
          body: `let n = index / uniforms.cols; let d = index - n * uniforms.cols;
            result[index] = (X[index] - S[2 * n]) * S[2 * n + 1] * G[d] + B[d];`,
        }),
        [flat(x), stats, flat(gamma), flat(beta)],
        'float32',
        [{ type: 'int32', data: [D] }],
      );
      const mean = pick(b, stats, N, 0);
      const rstd = pick(b, stats, N, 1);
      b.disposeData(stats.dataId);
      return [shaped(y, x.shape), mean, rstd];
    },
  },
  invoke: ({ x, gamma, beta, eps }) => ({ inputs: { x, gamma, beta }, attrs: { eps } }),
  finish: ([y, mean, rstd]) => ({ y: y!, mean: mean!, rstd: rstd! }),
  fallback: layerNormOps,
});

export const layerNormGradKernel = defineKernel<
  LayerNormGradArgs,
  LayerNormGradResult,
  Record<keyof LayerNormGradArgs, tf.TensorInfo>
>({
  name: 'KstarLayerNormGrad',
  backends: {
    webgpu: ({ inputs: { x, gamma, mean, rstd, dy }, backend: b }) => {
      const D = x.shape[x.shape.length - 1]!;
      const N = tf.util.sizeFromShape(x.shape) / D;
      const ins = [flat(x), flat(dy), flat(gamma), flat(mean), flat(rstd)];
      const names = ['X', 'DY', 'G', 'MU', 'RS'];
      // Per row: (mean(g), mean(g·x̂)), g = dy·γ.
      const rowStats = b.runWebGPUProgram(
        rowProgram({
          key: 'ln_grad_rows',
          rows: N,
          cols: D,
          outputSize: 2 * N,
          inputs: names,
          body: `let base = r * cols; let mu = MU[r]; let rs = RS[r];
            var s1 = 0.0; var s2 = 0.0;
            for (var c = tid; c < cols; c += kWG) {
              let g = DY[base + c] * G[c];
              s1 += g;
              s2 += g * (X[base + c] - mu) * rs;
            }
            let m1 = wgSum(s1) / f32(cols);
            let m2 = wgSum(s2) / f32(cols);
            if (valid && tid == 0) { result[2 * row] = m1; result[2 * row + 1] = m2; }`,
        }),
        ins,
        'float32',
        rowUniforms(N, D),
      );
      const dx = b.runWebGPUProgram(
        flatProgram({
          key: 'ln_dx',
          size: N * D,
          inputs: [...names, 'S'],
          uniforms: 'cols : i32,',
          body: `let n = index / uniforms.cols; let d = index - n * uniforms.cols;
            let rs = RS[n]; let xh = (X[index] - MU[n]) * rs;
            result[index] = rs * (DY[index] * G[d] - S[2 * n] - xh * S[2 * n + 1]);`,
        }),
        [...ins, rowStats],
        'float32',
        [{ type: 'int32', data: [D] }],
      );
      b.disposeData(rowStats.dataId);
      // dγ and dβ: partial column sums over chunks of LN_CHUNK rows [C, 2D], then a sum over the C chunks.
      const C = Math.ceil(N / LN_CHUNK);
      const partial = b.runWebGPUProgram(
        flatProgram({
          key: 'ln_dgb_partial',
          size: C * 2 * D,
          inputs: ['X', 'DY', 'MU', 'RS'],
          uniforms: 'cols : i32, n : i32,',
          body: `let D = uniforms.cols; let chunk = index / (2 * D); let j = index - chunk * 2 * D;
            let isBeta = j >= D; let d = select(j, j - D, isBeta);
            let n0 = chunk * ${LN_CHUNK}; let n1 = min(n0 + ${LN_CHUNK}, uniforms.n);
            var acc = 0.0;
            for (var n = n0; n < n1; n++) {
              let dyv = DY[n * D + d];
              if (isBeta) { acc += dyv; } else { acc += dyv * (X[n * D + d] - MU[n]) * RS[n]; }
            }
            result[index] = acc;`,
        }),
        [flat(x), flat(dy), flat(mean), flat(rstd)],
        'float32',
        [
          { type: 'int32', data: [D] },
          { type: 'int32', data: [N] },
        ],
      );
      const colSum = (offset: number) =>
        b.runWebGPUProgram(
          flatProgram({
            key: 'ln_dgb_sum',
            size: D,
            inputs: ['P'],
            uniforms: 'chunks : i32, width : i32, offset : i32,',
            body: `var acc = 0.0;
              for (var c = 0; c < uniforms.chunks; c++) { acc += P[c * uniforms.width + uniforms.offset + index]; }
              result[index] = acc;`,
          }),
          [partial],
          'float32',
          [
            { type: 'int32', data: [C] },
            { type: 'int32', data: [2 * D] },
            { type: 'int32', data: [offset] },
          ],
        );
      const dgamma = colSum(0);
      const dbeta = colSum(D);
      b.disposeData(partial.dataId);
      return [shaped(dx, x.shape), shaped(dgamma, [D]), shaped(dbeta, [D])];
    },
  },
  invoke: ({ x, gamma, mean, rstd, dy }) => ({ inputs: { x, gamma, mean, rstd, dy } }),
  finish: ([dx, dgamma, dbeta]) => ({ dx: dx!, dgamma: dgamma!, dbeta: dbeta! }),
  fallback: layerNormGradOps,
});
