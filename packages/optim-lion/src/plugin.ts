import {
  checkStep,
  type OptimizerPlugin,
  type OptimizerState,
  optimizerHead,
  type ParamInfo,
  type PluginMethods,
  requireStateVariables,
  splitImpl,
  stateVariable,
} from '@kstar/core';
import type * as tf from '@tensorflow/tfjs-core';
import { LION_HPARAMS, type LionHparams, type LionOptions, type LionReferenceHparams } from './hparams.ts';
import { lionUpdate } from './kernel.ts';
import { lionStateBytes } from './state.ts';

/** Which update implementation to use: the fused in-place kernel when it can run (`auto`) or tfjs ops. */
export type LionImpl = 'auto' | 'fallback';

/** The `lion` optimizer plugin: an `OptimizerPlugin` that also exposes its resolved hyper-parameters. */
export interface LionPlugin extends OptimizerPlugin {
  readonly name: 'lion';
  /** The hyper-parameters the next update uses (a frozen snapshot; `lr` follows `learningRate`). */
  readonly hparams: LionHparams;
  /** The learning rate given at creation (lr₀; `decoupledWeightDecay` divides λ by it). */
  readonly initialLearningRate: number;
  /** The learning rate of the next updates; schedules set it between steps (validated: finite, > 0). */
  learningRate: number;
  /** The state of one parameter: `m`, a non-trainable float32 variable of the parameter's shape. */
  init(param: ParamInfo): OptimizerState & { m: tf.Variable };
}

/** The λ the kernel applies as p·(1 − lr·λ): λ, or λ/lr₀ with `decoupledWeightDecay` (lion_pytorch). */
export function effectiveWeightDecay(hp: LionHparams, initialLr: number): number {
  return hp.decoupledWeightDecay ? hp.weightDecay / initialLr : hp.weightDecay;
}

/**
 * Lion (Chen et al. 2023) exactly as `lion_pytorch.Lion` (lucidrains/lion-pytorch 6a74fdc). Per step,
 * element-wise: p ← p·(1 − lr·λ); c ← β1·m + (1−β1)·g; p ← p − lr·sign(c) (sign(0) = 0); m ← β2·m + (1−β2)·g.
 * State: `{m}`, 4 bytes per parameter element (half of AdamW's). The update runs through the fused `KstarLion`
 * kernel (in place on cpu, wasm and webgpu; no param-sized temporary).
 *
 * Defaults are lion_pytorch's (lr 1e-4, β 0.9/0.99, λ 0). Use an lr 3–10× smaller than AdamW's and a λ
 * 3–10× larger (the effective decay is lr·λ). `learningRate` may be reassigned between steps (schedules); the
 * other hyper-parameters are fixed. `impl: 'fallback'` forces the tfjs-ops path (parity checks).
 */
export function lion(options: LionOptions & { impl?: LionImpl } = {}): LionPlugin {
  const { impl, rest } = splitImpl(options, 'lion');
  const head = optimizerHead('lion', LION_HPARAMS, LION_HPARAMS.resolve(rest));
  const initialLr = head.hparams.lr;
  return Object.assign(head, {
    initialLearningRate: initialLr,
    describe() {
      return { ...head.hparams, initialLearningRate: initialLr, impl, stateBytesPerElement: 4 };
    },
    init(param) {
      return { m: stateVariable(`${param.name}/m`, param.shape) };
    },
    update(param, grad, state, step) {
      const { m } = requireStateVariables('lion', param, state, ['m']);
      checkStep(step, 'lion');
      lionUpdate(
        param,
        grad,
        m,
        {
          lr: head.hparams.lr,
          beta1: head.hparams.beta1,
          beta2: head.hparams.beta2,
          weightDecay: effectiveWeightDecay(head.hparams, initialLr),
        },
        { impl },
      );
    },
    stateBytes(shape) {
      return lionStateBytes(shape);
    },
    // Element-wise: m is laid out like the parameter, so row chunks update exactly (gradient partitioning). Bytes
    // per element the update holds as tf.profile counts them (partition test): fallback temporaries; the in-place
    // kernel's two output aliases.
    rowChunks: {
      stateLayout: (state) => (state.m != null ? { m: 1 } : null),
      updateBytesPerElement: () => (impl === 'fallback' ? 12 : 8),
    },
  } satisfies PluginMethods<LionPlugin>);
}

/**
 * `lion()` from hyper-parameters under lion_pytorch's names (`{lr, beta1, beta2, weight_decay,
 * decoupled_weight_decay}` or `betas: [β1, β2]`; `use_triton` is accepted and ignored), as the golden fixtures
 * and `kstar replay` carry them. Missing ones take lion_pytorch's defaults.
 */
export function lionFromReferenceHparams(ref: LionReferenceHparams): LionPlugin {
  return lion(LION_HPARAMS.fromReference(ref));
}
