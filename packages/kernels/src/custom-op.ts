import * as tf from '@tensorflow/tfjs-core';

type Save = (tensors: tf.Tensor[]) => void;
export type CustomOpBody = (
  inputs: tf.Tensor[],
  save: Save,
) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] };

export interface CustomOpOptions {
  /**
   * Run the gradient function inside `tf.tidy` (default true). The tape calls a custom gradient function outside any
   * per-node scope (tfjs-core `tape.ts` backpropagateGradients: only the per-input getters are tidied), so without
   * the tidy its temporaries would live until the whole backward pass ends. Pass false for a gradient function that
   * disposes its own temporaries as it goes (e.g. chunk by chunk, calling `tf.grads` on a nested tape).
   */
  tidyGradient?: boolean;
}

/**
 * `tf.customGrad` with an array signature: `body(inputs, save)` returns the value and the gradient function. The
 * forward body runs inside the engine's kernel scope, so the tape records none of its ops (only what `save` keeps
 * reaches the backward pass).
 */
export function customOp(
  body: CustomOpBody,
  options: CustomOpOptions = {},
): (...inputs: tf.Tensor[]) => tf.Tensor {
  const tidyGradient = options.tidyGradient ?? true;
  const op = tf.customGrad((...args: (tf.Tensor | Save)[]) => {
    const save = args.pop() as Save;
    const { value, gradFunc } = body(args as tf.Tensor[], save);
    if (!tidyGradient) return { value, gradFunc };
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => gradFunc(dy, saved)),
    };
  });
  return (...inputs: tf.Tensor[]) => op(...inputs);
}
