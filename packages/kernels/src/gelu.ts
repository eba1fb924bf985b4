import * as tf from '@tensorflow/tfjs-core';
import { defineKernel } from './define-kernel.ts';
import { chain, shaped } from './row-program.ts';
import { flat, flatProgram } from './wgsl.ts';

/**
 * GELU, tanh approximation (GPT-2): `y = 0.5·h·(1 + tanh(u))`, `u = c·(h + a·h³)`, c = √(2/π), a = 0.044715, and its
 * gradient `dh = dy·(0.5·(1 + t) + 0.5·c·h·(1 − t²)·(1 + 3a·h²))` with `t = tanh(u)`, recomputed from `h`.
 * WebGPU: one element-wise dispatch each way (the tfjs-ops fallback runs 9 ops forward and 17 backward).
 */
export const GELU_C = Math.sqrt(2 / Math.PI);
export const GELU_A = 0.044715;

/** WGSL tanh that does not overflow: `tanh(u) = 1 − 2/(e^{2u} + 1)`, clamped (some drivers return NaN for |u| ≫ 1). */
const WGSL_TANH = `let uc = clamp(u, -15.0, 15.0); let e2 = exp(2.0 * uc); let t = 1.0 - 2.0 / (e2 + 1.0);`;

/** `c·(h + a·h³)` = `c·h·(1 + a·h²)` from `h` and `sq = h²` (tfjs ops). */
function inner(h: tf.Tensor, sq: tf.Tensor): tf.Tensor {
  return chain(
    chain(
      chain(tf.mul(sq, GELU_A), (t) => tf.add(t, 1)),
      (t) => tf.mul(t, h),
    ),
    (t) => tf.mul(t, GELU_C),
  );
}

function geluOps(h: tf.Tensor): tf.Tensor {
  const sq = tf.square(h); // [N, 4D]
  const u = inner(h, sq);
  sq.dispose();
  return chain(
    chain(
      chain(
        chain(u, (v) => tf.tanh(v)),
        (v) => tf.add(v, 1),
      ),
      (v) => tf.mul(v, h),
    ),
    (v) => tf.mul(v, 0.5),
  );
}

function geluGradOps(h: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  const sq = tf.square(h);
  const t = chain(inner(h, sq), (u) => tf.tanh(u)); // tanh(u)
  const du = chain(
    chain(sq, (s) => tf.mul(s, 3 * GELU_A)),
    (s) => tf.add(s, 1),
  ); // 1 + 3a·h²
  const right = chain(
    chain(
      chain(
        chain(tf.square(t), (s) => tf.sub(1, s)),
        (s) => tf.mul(s, du),
      ),
      (s) => tf.mul(s, h),
    ),
    (s) => tf.mul(s, 0.5 * GELU_C),
  ); // 0.5·c·h·(1 − t²)·(1 + 3a·h²)
  du.dispose();
  const left = chain(
    chain(t, (s) => tf.add(s, 1)),
    (s) => tf.mul(s, 0.5),
  ); // 0.5·(1 + t)
  const deriv = tf.add(left, right);
  left.dispose();
  right.dispose();
  return chain(deriv, (d) => tf.mul(dy, d));
}

const consts = `let c = ${GELU_C}; let a = ${GELU_A};`;

export const geluKernel = defineKernel<tf.Tensor, tf.Tensor>({
  name: 'KstarGelu',
  backends: {
    webgpu: ({ inputs, backend }) => {
      const h = inputs.h as tf.TensorInfo;
      const size = tf.util.sizeFromShape(h.shape);
      const program = flatProgram({
        key: 'gelu_fwd',
        size,
        inputs: ['H'],
        body: `${consts} let x = H[index]; let u = c * x * (1.0 + a * x * x); ${WGSL_TANH}
          result[index] = 0.5 * x * (1.0 + t);`,
      });
      const out = backend.runWebGPUProgram(program, [flat(h)], 'float32');
      return shaped(out, h.shape);
    },
  },
  invoke: (h) => ({ inputs: { h } }),
  finish: ([y]) => y!,
  fallback: geluOps,
});

export const geluGradKernel = defineKernel<{ h: tf.Tensor; dy: tf.Tensor }, tf.Tensor>({
  name: 'KstarGeluGrad',
  backends: {
    webgpu: ({ inputs, backend }) => {
      const { h, dy } = inputs as { h: tf.TensorInfo; dy: tf.TensorInfo };
      const size = tf.util.sizeFromShape(h.shape);
      const program = flatProgram({
        key: 'gelu_bwd',
        size,
        inputs: ['H', 'DY'],
        body: `${consts} let x = H[index]; let x2 = x * x; let u = c * x * (1.0 + a * x2); ${WGSL_TANH}
          let d = 0.5 * (1.0 + t) + 0.5 * c * x * (1.0 - t * t) * (1.0 + 3.0 * a * x2);
          result[index] = DY[index] * d;`,
      });
      const out = backend.runWebGPUProgram(program, [flat(h), flat(dy)], 'float32');
      return shaped(out, h.shape);
    },
  },
  invoke: ({ h, dy }) => ({ inputs: { h, dy } }),
  finish: ([dh]) => dh!,
  fallback: ({ h, dy }) => geluGradOps(h, dy),
});
