import {
  checkStep,
  InputError,
  isVariable,
  type OptimizerPlugin,
  type OptimizerState,
  optimizerHead,
  type ParamInfo,
  type PluginMethods,
  splitImpl,
} from '@kstar/core';
import { adamwUpdate } from '@kstar/kernels';
import type * as tf from '@tensorflow/tfjs-core';
import {
  ADAM8BIT_HPARAMS,
  type Adam8bitHparams,
  type Adam8bitOptions,
  type Adam8bitReferenceHparams,
} from './hparams.ts';
import { adam8bitUpdate } from './kernel.ts';
import { adam8bitStateBytes, createState, isQuantized, numel } from './state.ts';

export type Adam8bitImpl = 'auto' | 'fallback';

export interface Adam8bitPlugin extends OptimizerPlugin {
  readonly name: 'adam8bit';
  readonly hparams: Adam8bitHparams;
  learningRate: number;
  /** 8-bit state `{c1, a1, c2, a2}` (m codes/absmax, v codes/absmax) or float32 `{m, v}`. */
  init(param: ParamInfo): OptimizerState;
}

/** Applies one step to `param` from its state record (8-bit or float32), shared by the plugin and the drop-in class. */
export function stepParam(
  param: tf.Variable,
  grad: tf.Tensor,
  state: OptimizerState,
  step: number,
  hp: Adam8bitHparams,
  impl: Adam8bitImpl,
  where: string,
): void {
  checkStep(step, where);
  const { c1, a1, c2, a2, m, v } = state as Record<string, tf.Tensor | undefined>;
  if (isVariable(c1) && isVariable(a1) && isVariable(c2) && isVariable(a2)) {
    adam8bitUpdate(
      {
        param,
        grad,
        c1,
        a1,
        c2,
        a2,
        hp: {
          lr: hp.lr,
          beta1: hp.beta1,
          beta2: hp.beta2,
          eps: hp.eps,
          weightDecay: hp.weightDecay,
          step,
          blockSize: hp.blockSize,
        },
      },
      { impl },
    );
  } else if (isVariable(m) && isVariable(v)) {
    // Float32 state (small tensors, embeddings): the fused AdamW kernel, same decay order (before the update).
    adamwUpdate(
      param,
      grad,
      m,
      v,
      { lr: hp.lr, beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps, weightDecay: hp.weightDecay, step },
      { impl },
    );
  } else {
    throw new InputError(
      `${where}: the state of parameter '${param.name}' has neither {c1, a1, c2, a2} nor {m, v} variables (keys: ${Object.keys(state).join(', ') || 'none'}): create it with init`,
    );
  }
}

/**
 * 8-bit Adam / AdamW (Dettmers et al. 2022; bitsandbytes block-wise `Adam8bit`): m and v live as 8-bit codes of
 * the signed / unsigned dynamic maps with a float32 absmax per block of 256, updated by ONE fused kernel per
 * backend (dequantize → fp32 Adam → update p → requantize). Tensors under `minQuantizedSize` (4096) elements, and
 * embeddings with `float32Embeddings`, keep float32 m and v (updated by the fused AdamW kernel). Decoupled decay
 * p·(1 − lr·λ) is applied before the update (torch AdamW order; bnb's CUDA kernel applies it after: O(lr²λ) apart).
 * State: 2 + 8/256 = 2.031 bytes per element for large tensors, 8 for small ones.
 */
export function adam8bit(options: Adam8bitOptions & { impl?: Adam8bitImpl } = {}): Adam8bitPlugin {
  const { impl, rest } = splitImpl(options, 'adam8bit');
  const head = optimizerHead('adam8bit', ADAM8BIT_HPARAMS, ADAM8BIT_HPARAMS.resolve(rest));
  return Object.assign(head, {
    describe() {
      return {
        ...head.hparams,
        impl,
        stateBytesPerElement: 2 + 8 / head.hparams.blockSize,
        decayOrder: 'before-update',
      };
    },
    init(param) {
      return createState(
        param.name,
        param.shape,
        isQuantized(numel(param.shape), param.role, head.hparams),
        head.hparams.blockSize,
      );
    },
    update(param, grad, state, step) {
      stepParam(param, grad, state, step, head.hparams, impl, 'adam8bit');
    },
    stateBytes(shape, role) {
      return adam8bitStateBytes(shape, role, head.hparams);
    },
    // Element-wise with block-local statistics: a chunk of whole quantization blocks updates exactly (gradient
    // partitioning). Layout: 4 codes per int32, one absmax per block. Bytes per element the update holds as
    // tf.profile counts them (partition test): the fallback's dequantize/requantize temporaries (≈279 at B = 256);
    // the kernel's output aliases (6 + 8/B); float32 state as AdamW.
    rowChunks: {
      stateLayout: (state): Record<string, number> | null =>
        state.c1 != null
          ? { c1: 4, a1: head.hparams.blockSize, c2: 4, a2: head.hparams.blockSize }
          : state.m != null && state.v != null
            ? { m: 1, v: 1 }
            : null,
      updateBytesPerElement: (state) =>
        state.c1 != null
          ? impl === 'fallback'
            ? 288
            : 6 + 8 / head.hparams.blockSize
          : impl === 'fallback'
            ? 36
            : 12,
    },
  } satisfies PluginMethods<Adam8bitPlugin>);
}

/**
 * `adam8bit()` from torch/bitsandbytes names (`{lr, betas | beta1/beta2, eps, weight_decay, min_8bit_size,
 * block_size}`), as the golden fixtures and `kstar replay` carry them (the golden `adamw` run replays with it).
 * `extra` adds K* options, e.g. `{minQuantizedSize: 0}` to force 8-bit state on small tensors.
 */
export function adam8bitFromReferenceHparams(
  ref: Adam8bitReferenceHparams,
  extra: Adam8bitOptions & { impl?: Adam8bitImpl } = {},
): Adam8bitPlugin {
  return adam8bit({ ...ADAM8BIT_HPARAMS.fromReference(ref), ...extra });
}
