import {
  type OptimizerPlugin,
  type OptimizerState,
  optimizerHead,
  type ParamInfo,
  type PluginMethods,
  requireStateVariables,
  splitImpl,
  stateVariable,
} from '@kstar/core';
import { adamwUpdate } from '@kstar/kernels';
import type * as tf from '@tensorflow/tfjs-core';
import {
  ADAMW_HPARAMS,
  type AdamWHparams,
  type AdamWOptions,
  type AdamWReferenceHparams,
} from './hparams.ts';

/** Which update implementation to use: the fused in-place kernel when it can run (`auto`) or tfjs ops. */
export type AdamWImpl = 'auto' | 'fallback';

/** The `adamw` optimizer plugin: an `OptimizerPlugin` that also exposes its resolved hyper-parameters. */
export interface AdamWPlugin extends OptimizerPlugin {
  readonly name: 'adamw';
  /** The hyper-parameters the next update uses (a frozen snapshot; `lr` follows `learningRate`). */
  readonly hparams: Readonly<Required<AdamWHparams>>;
  /** The learning rate of the next updates; schedules set it between steps (validated: finite, > 0). */
  learningRate: number;
  /** The state of one parameter: `m` and `v`, non-trainable float32 variables of the parameter's shape. */
  init(param: ParamInfo): OptimizerState & { m: tf.Variable; v: tf.Variable };
}

/** Bytes of AdamW state for a parameter of `shape`: two float32 moments, 8 bytes per element. */
export function adamwStateBytes(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return 8 * n;
}

/**
 * Peak bytes per element the update itself holds, as `tf.profile` counts them (measured by the partition test):
 * the fallback's temporaries; the in-place kernel's three output aliases (no real buffer, but counted).
 */
const UPDATE_BYTES_PER_ELEMENT = { fallback: 36, auto: 12 } as const;

/**
 * AdamW (decoupled weight decay, bias correction; torch.optim.AdamW semantics), the K* baseline optimizer.
 * Per step t, element-wise: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * p ← p·(1 − lr·λ) − lr·(m / (1−β1^t)) / (√(v / (1−β2^t)) + ε). State: `{m, v}`, 8 bytes per parameter element.
 * The update runs through `adamwUpdate` of `@kstar/kernels` (in place on cpu, wasm and webgpu).
 *
 * `learningRate` may be reassigned between steps (schedules); the other hyper-parameters are fixed.
 * `impl: 'fallback'` forces the tfjs-ops path (parity checks); it is not a hyper-parameter.
 */
export function adamw(options: AdamWOptions & { impl?: AdamWImpl } = {}): AdamWPlugin {
  const { impl, rest } = splitImpl(options, 'adamw');
  const head = optimizerHead('adamw', ADAMW_HPARAMS, ADAMW_HPARAMS.resolve(rest));
  return Object.assign(head, {
    describe() {
      return { ...head.hparams, impl, stateBytesPerElement: 8 };
    },
    init(param) {
      const m = stateVariable(`${param.name}/m`, param.shape);
      const v = stateVariable(`${param.name}/v`, param.shape);
      return { m, v };
    },
    update(param, grad, state, step) {
      const { m, v } = requireStateVariables('adamw', param, state, ['m', 'v']);
      adamwUpdate(param, grad, m, v, { ...head.hparams, step }, { impl });
    },
    stateBytes(shape) {
      return adamwStateBytes(shape);
    },
    // Element-wise: m and v are laid out like the parameter, so row chunks update exactly (gradient partitioning).
    rowChunks: {
      stateLayout: (state) => (state.m != null && state.v != null ? { m: 1, v: 1 } : null),
      updateBytesPerElement: () => UPDATE_BYTES_PER_ELEMENT[impl],
    },
  } satisfies PluginMethods<AdamWPlugin>);
}

/**
 * `adamw()` from hyper-parameters under torch.optim.AdamW's names (`{lr, beta1, beta2, eps, weight_decay}` or
 * `betas: [β1, β2]`), as the golden fixtures and `kstar replay` carry them. Missing ones take the defaults.
 */
export function adamwFromReferenceHparams(ref: AdamWReferenceHparams): AdamWPlugin {
  return adamw(ADAMW_HPARAMS.fromReference(ref));
}
