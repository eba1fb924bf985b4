import {
  type OptimizerPlugin,
  type OptimizerState,
  type ParamInfo,
  requireStateVariables,
  SPECIFICATION_VERSION,
  splitImpl,
} from '@kstar/core';
import type * as tf from '@tensorflow/tfjs-core';
import {
  ADAFACTOR_HPARAMS,
  type AdafactorHparams,
  type AdafactorOptions,
  type AdafactorReferenceHparams,
  checkExternalLr,
} from './hparams.ts';
import { type AdafactorStateVars, adafactorUpdate } from './kernel.ts';
import { type AdafactorStateKey, adafactorStateBytes, createState, stateShapes } from './state.ts';

/** Which update implementation to use: the fused in-place kernel when it can run (`auto`) or tfjs ops. */
export type AdafactorImpl = 'auto' | 'fallback';

/** The `adafactor` optimizer plugin: an `OptimizerPlugin` that also exposes its resolved hyper-parameters. */
export interface AdafactorPlugin extends OptimizerPlugin {
  readonly name: 'adafactor';
  /** The hyper-parameters the next update uses (a frozen snapshot; `lr` follows `learningRate`). */
  readonly hparams: AdafactorHparams;
  /**
   * Present ONLY without `relativeStep`: the lr of the next updates, set by schedules between steps (validated:
   * finite > 0). With `relativeStep` the plugin has no `learningRate` property at all (`'learningRate' in plugin`
   * is false, so the K* trainer skips its schedule) and is non-extensible, so assigning one throws a TypeError.
   */
  learningRate?: number;
  /** State: `exp_avg_sq_row` + `exp_avg_sq_col` (rank ≥ 2) or `exp_avg_sq` (rank ≤ 1), plus `exp_avg` with beta1. */
  init(param: ParamInfo): OptimizerState & AdafactorStateVars;
}

/**
 * Adafactor (Shazeer & Stern 2018) exactly as `transformers.optimization.Adafactor`: factored second moments
 * (row and column means of g² + eps1 over the last two dims) for rank ≥ 2, a full one for vectors, update
 * clipping by RMS, relative step or an external lr, parameter-scaled step, optional momentum (beta1) of the
 * lr-scaled update and weight decay p −= weightDecay·alpha·p. The engine's 1-based `step` is HF's per-parameter
 * `state["step"]`. Updates run through the fused `KstarAdafactor` kernel (in place on cpu, wasm and webgpu).
 *
 * Defaults are HF's (`relativeStep: true, scaleParameter: true, lr: null`). For an external schedule use
 * `{relativeStep: false, scaleParameter: false, lr}` (alpha is then exactly lr). `impl: 'fallback'` forces the
 * tfjs-ops path (parity checks); it is not a hyper-parameter.
 */
export function adafactor(options: AdafactorOptions & { impl?: AdafactorImpl } = {}): AdafactorPlugin {
  const { impl, rest } = splitImpl(options, 'adafactor');
  let hparams = ADAFACTOR_HPARAMS.resolve(rest);
  const withMomentum = hparams.beta1 != null;
  const plugin = {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'optimizer' as const,
    name: 'adafactor' as const,
    get hparams() {
      return hparams;
    },
    describe() {
      return {
        ...hparams,
        impl,
        stateBytes: withMomentum
          ? '4(m+n) + 4mn per matrix, 8n per vector'
          : '4(m+n) per matrix, 4n per vector',
      };
    },
    init(param: ParamInfo) {
      return createState(param.name, param.shape, withMomentum) as OptimizerState & AdafactorStateVars;
    },
    update(param: tf.Variable, grad: tf.Tensor, state: OptimizerState, step: number) {
      const expected = Object.keys(stateShapes(param.shape, withMomentum)) as AdafactorStateKey[];
      const s: AdafactorStateVars = requireStateVariables('adafactor', param, state, expected);
      adafactorUpdate(param, grad, s, hparams, step, { impl });
    },
    stateBytes(shape: readonly number[]) {
      return adafactorStateBytes(shape, withMomentum);
    },
  };
  if (!hparams.relativeStep) {
    Object.defineProperty(plugin, 'learningRate', {
      enumerable: true,
      get: () => hparams.lr as number,
      set: (lr: number) => {
        hparams = Object.freeze({ ...hparams, lr: checkExternalLr(lr, 'adafactor') });
      },
    });
  }
  return Object.preventExtensions(plugin) as AdafactorPlugin;
}

/**
 * `adafactor()` from hyper-parameters under HF's names (`{lr, relative_step, scale_parameter, warmup_init,
 * beta1, clip_threshold, decay_rate, eps: [eps1, eps2] | eps1, eps2, weight_decay}`), as the golden fixtures and
 * `kstar replay` carry them. Missing ones take HF's defaults; `lr: null` is HF's `lr=None`.
 */
export function adafactorFromReferenceHparams(ref: AdafactorReferenceHparams): AdafactorPlugin {
  return adafactor(ADAFACTOR_HPARAMS.fromReference(ref));
}
