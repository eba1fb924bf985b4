import { crossEntropyGradKernel, crossEntropyKernel, customOp } from '@kstar/kernels';
import type * as tf from '@tensorflow/tfjs-core';

/**
 * Mean cross-entropy of `logits` [N, V] against int32 `targets` [N]: `mean_n (logsumexp(z_n) − z_n[t_n])`.
 * Custom gradient (the llm.c formulation): the tape keeps `logits` (the matMul output: no copy on cpu/webgpu),
 * `lse` [N,1] and `targets`; backward recomputes `softmax = exp(z − lse)` and returns `(softmax − onehot)·dy/N`.
 * Both directions are @kstar/kernels' `KstarCrossEntropy`/`KstarCrossEntropyGrad`: fused WGSL on WebGPU with no
 * [N, V] one-hot; elsewhere the tfjs-ops fallback (ops present on cpu, wasm and webgpu; ≤ 2 temporaries of [N, V]).
 */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  const op = customOp(([z], save) => {
    const { loss, lse } = crossEntropyKernel.run({ logits: z!, targets });
    save([z!, lse, targets]);
    return {
      value: loss,
      gradFunc: (dy, [zs, l, t]) => [crossEntropyGradKernel.run({ logits: zs!, lse: l!, targets: t!, dy })],
    };
  });
  return op(logits);
}
