import * as tf from '@tensorflow/tfjs-core';

type Save = (tensors: tf.Tensor[]) => void;
type Body = (
  inputs: tf.Tensor[],
  save: Save,
) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] };

/**
 * `tf.customGrad` with an array signature, and the gradient function run inside `tf.tidy`.
 * Why the tidy: the tape calls a custom gradient function outside any per-node scope
 * (tfjs-core `tape.ts` backpropagateGradients: only the per-input getters are tidied), so its temporaries would
 * otherwise live until the whole backward pass ends.
 */
export function customOp(body: Body): (...inputs: tf.Tensor[]) => tf.Tensor {
  const op = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as Save;
    const { value, gradFunc } = body(args as tf.Tensor[], save);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => gradFunc(dy, saved)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (...inputs: tf.Tensor[]) => op(...inputs);
}

/**
 * `f(t)`, then dispose `t` (named `step`, not `then`: a module exporting `then` is a thenable and breaks `await import`): chains elementwise steps so that at most two temporaries of a chain are alive at once
 * (inside `tf.tidy` every intermediate would otherwise live until the scope ends, multiplying the op's peak).
 */
export function step(t: tf.Tensor, f: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  const r = f(t);
  t.dispose();
  return r;
}
