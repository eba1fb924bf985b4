import * as tf from '@tensorflow/tfjs-core';
import { defineKernel } from './define-kernel.ts';
import { chain, rowProgram, rowUniforms, shaped } from './row-program.ts';
import { flat } from './wgsl.ts';

/**
 * Causal attention softmax over the last axis of raw scores `s` [B, H, T, T]: `p = softmax(scale·s + mask)` with the
 * causal mask (row i sees columns j ≤ i), and its gradient `ds = scale·p·(dp − Σ_j dp·p)` from `p` alone.
 * WebGPU: one dispatch each way, one workgroup per row, reading only the row's j ≤ i columns and writing 0 above
 * the diagonal; no [T, T] mask tensor. The tfjs-ops fallback (scale, add an additive −1e9 mask, softmax; backward:
 * 4 ops) is the reference; both give exactly 0 above the diagonal.
 */
export interface CausalSoftmaxArgs {
  s: tf.Tensor; // [B, H, T, T]
  scale: number;
}
export interface CausalSoftmaxGradArgs {
  p: tf.Tensor; // [B, H, T, T]
  dp: tf.Tensor; // [B, H, T, T]
  scale: number;
}

/** Additive causal masks as plain JS data (not tensors), by T: 0 on and below the diagonal, −1e9 above. */
const masks = new Map<number, Float32Array>();

function causalMaskData(T: number): Float32Array {
  let m = masks.get(T);
  if (!m) {
    m = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e9;
    masks.set(T, m);
  }
  return m;
}

function causalSoftmaxOps({ s, scale }: CausalSoftmaxArgs): tf.Tensor {
  const T = s.shape[s.rank - 1]!;
  const mask = tf.tensor2d(causalMaskData(T), [T, T]); // [T, T]
  const p = chain(
    chain(tf.mul(s, scale), (t) => tf.add(t, mask)),
    (t) => tf.softmax(t),
  ); // [B, H, T, T]
  mask.dispose();
  return p;
}

function causalSoftmaxGradOps({ p, dp, scale }: CausalSoftmaxGradArgs): tf.Tensor {
  const dyp = tf.mul(dp, p); // [B, H, T, T]
  const rowSum = tf.sum(dyp, -1, true); // [B, H, T, 1]
  const ds = chain(
    chain(tf.mul(p, rowSum), (t) => {
      const out = tf.sub(dyp, t);
      dyp.dispose();
      return out;
    }),
    (t) => tf.mul(t, scale),
  ); // [B, H, T, T]
  rowSum.dispose();
  return ds;
}

export const causalSoftmaxKernel = defineKernel<CausalSoftmaxArgs, tf.Tensor>({
  name: 'KstarCausalSoftmax',
  backends: {
    webgpu: ({ inputs, backend, attrs }) => {
      const s = inputs.s as tf.TensorInfo;
      const T = s.shape[s.shape.length - 1]!;
      const rows = tf.util.sizeFromShape(s.shape) / T;
      const program = rowProgram({
        key: 'causal_softmax_fwd',
        rows,
        cols: T,
        outputSize: rows * T,
        inputs: ['S'],
        uniforms: 'scale : f32,',
        // Query position i = row mod T; columns j > i are masked.
        body: `let base = r * cols; let last = r % cols;
          var m = -3.402823e+38;
          for (var c = tid; c <= last; c += kWG) { m = max(m, S[base + c] * uniforms.scale); }
          let rowMax = wgMax(m);
          var z = 0.0;
          for (var c = tid; c <= last; c += kWG) { z += exp(S[base + c] * uniforms.scale - rowMax); }
          let inv = 1.0 / wgSum(z);
          if (valid) {
            for (var c = tid; c < cols; c += kWG) {
              var v = 0.0;
              if (c <= last) { v = exp(S[base + c] * uniforms.scale - rowMax) * inv; }
              result[base + c] = v;
            }
          }`,
      });
      const scale = (attrs as { scale: number }).scale;
      const out = backend.runWebGPUProgram(program, [flat(s)], 'float32', rowUniforms(rows, T, scale));
      return shaped(out, s.shape);
    },
  },
  invoke: ({ s, scale }) => ({ inputs: { s }, attrs: { scale } }),
  finish: ([p]) => p!,
  fallback: causalSoftmaxOps,
});

export const causalSoftmaxGradKernel = defineKernel<CausalSoftmaxGradArgs, tf.Tensor>({
  name: 'KstarCausalSoftmaxGrad',
  backends: {
    webgpu: ({ inputs, backend, attrs }) => {
      const { p, dp } = inputs as { p: tf.TensorInfo; dp: tf.TensorInfo };
      const T = p.shape[p.shape.length - 1]!;
      const rows = tf.util.sizeFromShape(p.shape) / T;
      const program = rowProgram({
        key: 'causal_softmax_bwd',
        rows,
        cols: T,
        outputSize: rows * T,
        inputs: ['P', 'DP'],
        uniforms: 'scale : f32,',
        body: `let base = r * cols; let last = r % cols;
          var acc = 0.0;
          for (var c = tid; c <= last; c += kWG) { acc += DP[base + c] * P[base + c]; }
          let dot = wgSum(acc);
          if (valid) {
            for (var c = tid; c < cols; c += kWG) {
              var v = 0.0;
              if (c <= last) { v = uniforms.scale * P[base + c] * (DP[base + c] - dot); }
              result[base + c] = v;
            }
          }`,
      });
      const scale = (attrs as { scale: number }).scale;
      const out = backend.runWebGPUProgram(
        program,
        [flat(p), flat(dp)],
        'float32',
        rowUniforms(rows, T, scale),
      );
      return shaped(out, p.shape);
    },
  },
  invoke: ({ p, dp, scale }) => ({ inputs: { p, dp }, attrs: { scale } }),
  finish: ([ds]) => ds!,
  fallback: causalSoftmaxGradOps,
});
