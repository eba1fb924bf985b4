import * as tf from '@tensorflow/tfjs-core';
import { defineKernel } from './define-kernel.ts';
import { chain, rowProgram, rowUniforms, shaped } from './row-program.ts';
import { flat, flatProgram } from './wgsl.ts';

/**
 * Mean softmax cross-entropy of `logits` [N, V] against int32 `targets` [N]: `loss = mean_n (lse_n − z_n[t_n])`,
 * `lse_n = logsumexp(z_n)`, returned with `lse` [N, 1] for the backward. Backward: `dz = (exp(z − lse) − onehot(t))·dy/N`.
 * WebGPU: forward = one workgroup per row (max, Σexp, the target's logit) + one workgroup for the mean; backward =
 * one element-wise dispatch that compares the column with the target; no [N, V] one-hot anywhere.
 * The tfjs-ops fallback (logSumExp, a one-hot product, exp/sub/mul) is the reference.
 */
export interface CrossEntropyArgs {
  logits: tf.Tensor; // [N, V]
  targets: tf.Tensor; // [N] int32
}
export interface CrossEntropyResult {
  loss: tf.Tensor; // []
  lse: tf.Tensor; // [N, 1]
}
export interface CrossEntropyGradArgs {
  logits: tf.Tensor; // [N, V]
  lse: tf.Tensor; // [N, 1]
  targets: tf.Tensor; // [N] int32
  dy: tf.Tensor; // []
}

function crossEntropyOps({ logits, targets }: CrossEntropyArgs): CrossEntropyResult {
  const V = logits.shape[1]!;
  const lse = tf.logSumExp(logits, -1, true); // [N, 1]
  const picked = chain(
    chain(tf.oneHot(targets, V, 1, 0, 'float32'), (oh) => tf.mul(logits, oh)),
    (t) => tf.sum(t, -1, true),
  ); // [N, 1]
  const loss = chain(tf.sub(lse, picked), (t) => tf.mean(t)); // []
  picked.dispose();
  return { loss, lse };
}

function crossEntropyGradOps({ logits, lse, targets, dy }: CrossEntropyGradArgs): tf.Tensor {
  const [N, V] = logits.shape as [number, number];
  const scale = tf.div(dy, N); // []
  const dz = chain(
    chain(
      chain(tf.sub(logits, lse), (u) => tf.exp(u)),
      (probs) => {
        const oh = tf.oneHot(targets, V, 1, 0, 'float32'); // [N, V]
        const out = tf.sub(probs, oh);
        oh.dispose();
        return out;
      },
    ),
    (u) => tf.mul(u, scale),
  ); // [N, V]
  scale.dispose();
  return dz;
}

export const crossEntropyKernel = defineKernel<CrossEntropyArgs, CrossEntropyResult>({
  name: 'KstarCrossEntropy',
  backends: {
    webgpu: ({ inputs, backend: b }) => {
      const { logits, targets } = inputs as { logits: tf.TensorInfo; targets: tf.TensorInfo };
      const [N, V] = logits.shape as [number, number];
      // Per row: [2N] = (loss_n, lse_n) at (n, N + n).
      const rows = b.runWebGPUProgram(
        rowProgram({
          key: 'xent_rows',
          rows: N,
          cols: V,
          outputSize: 2 * N,
          inputs: ['Z', 'TGT'],
          body: `let base = r * cols;
            var m = -3.402823e+38;
            for (var c = tid; c < cols; c += kWG) { m = max(m, Z[base + c]); }
            let rowMax = wgMax(m);
            var z = 0.0;
            for (var c = tid; c < cols; c += kWG) { z += exp(Z[base + c] - rowMax); }
            let lse = rowMax + log(wgSum(z));
            if (valid && tid == 0) {
              result[row] = lse - Z[base + TGT[row]];
              result[uniforms.rows + row] = lse;
            }`,
        }),
        [flat(logits), flat(targets)],
        'float32',
        rowUniforms(N, V),
      );
      // The mean over rows, in one workgroup.
      const loss = b.runWebGPUProgram(
        rowProgram({
          key: 'xent_mean',
          rows: 1,
          cols: N,
          outputSize: 1,
          inputs: ['L'],
          body: `var s = 0.0;
            for (var c = tid; c < cols; c += kWG) { s += L[c]; }
            let total = wgSum(s);
            if (valid && tid == 0) { result[0] = total / f32(cols); }`,
        }),
        [rows],
        'float32',
        rowUniforms(1, N),
      );
      const lse = b.runWebGPUProgram(
        flatProgram({
          key: 'xent_lse',
          size: N,
          inputs: ['R'],
          body: 'result[index] = R[uniforms.size + index];',
        }),
        [rows],
        'float32',
      );
      b.disposeData(rows.dataId);
      return [shaped(loss, []), shaped(lse, [N, 1])];
    },
  },
  invoke: ({ logits, targets }) => ({ inputs: { logits, targets } }),
  finish: ([loss, lse]) => ({ loss: loss!, lse: lse! }),
  fallback: crossEntropyOps,
  canRunNative: ({ targets }) => targets.dtype === 'int32',
});

export const crossEntropyGradKernel = defineKernel<
  CrossEntropyGradArgs,
  tf.Tensor,
  Record<keyof CrossEntropyGradArgs, tf.TensorInfo>
>({
  name: 'KstarCrossEntropyGrad',
  backends: {
    webgpu: ({ inputs: { logits, lse, targets, dy }, backend }) => {
      const [N, V] = logits.shape as [number, number];
      const program = flatProgram({
        key: 'xent_grad',
        size: N * V,
        inputs: ['Z', 'L', 'TGT', 'DY'],
        uniforms: 'cols : i32, invN : f32,',
        body: `let n = index / uniforms.cols; let v = index - n * uniforms.cols;
          let p = exp(Z[index] - L[n]);
          result[index] = (p - select(0.0, 1.0, v == TGT[n])) * DY[0] * uniforms.invN;`,
      });
      const out = backend.runWebGPUProgram(
        program,
        [flat(logits), flat(lse), flat(targets), flat(dy)],
        'float32',
        [
          { type: 'int32', data: [V] },
          { type: 'float32', data: [1 / N] },
        ],
      );
      return shaped(out, [N, V]);
    },
  },
  invoke: ({ logits, lse, targets, dy }) => ({ inputs: { logits, lse, targets, dy } }),
  finish: ([dz]) => dz!,
  fallback: crossEntropyGradOps,
  canRunNative: ({ targets }) => targets.dtype === 'int32',
});
