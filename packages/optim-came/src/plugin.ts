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
import { cameStateBytes } from './geometry.ts';
import { CAME_HPARAMS, type CameHparams, type CameOptions, type CameReferenceHparams } from './hparams.ts';
import { cameUpdate } from './kernel.ts';
import { type CameState, createCameState, stateShapes } from './state.ts';

/** Which update implementation to use: the fused in-place kernel when it can run (`auto`) or tfjs ops. */
export type CameImpl = 'auto' | 'fallback';

/** The `came` optimizer plugin: an `OptimizerPlugin` that also exposes its resolved hyper-parameters. */
export interface CamePlugin extends OptimizerPlugin {
  readonly name: 'came';
  /** The hyper-parameters the next update uses (a frozen snapshot; `lr` follows `learningRate`). */
  readonly hparams: Readonly<CameHparams>;
  /** The learning rate of the next updates; schedules set it between steps (validated: finite, > 0). */
  learningRate: number;
  /**
   * The state of one parameter, non-trainable float32 variables named `<param>/<key>`: rank ≥ 2 → `m`, `vRow`,
   * `vCol`, `resRow`, `resCol`; rank ≤ 1 → `m`, `v` (see `CameState`).
   */
  init(param: ParamInfo): OptimizerState & CameState;
}

/** True when `state` holds exactly the variables `keys` (those `stateShapes` gives the parameter's shape). */
function holdsCameState(state: OptimizerState, keys: readonly string[]): state is OptimizerState & CameState {
  return keys.every((k) => isVariable(state[k])) && Object.keys(state).length === keys.length;
}

/**
 * CAME (Luo et al., ACL 2023), exactly `came_pytorch.CAME`: a factored second moment (Adafactor's, constant β2,
 * no relative step, no bias correction), update clipping, momentum of the clipped update and, for rank ≥ 2,
 * a factored confidence (instability) term that scales the momentum step; decoupled weight decay p ← p − wd·lr·p.
 * State: 4mn + 8(m+n) bytes for an m×n matrix (leading dims of a rank > 2 tensor act as a batch), 8n for a vector.
 * The update runs through the `KstarCameFactored` / `KstarCameVector` kernels (in place on cpu, wasm and webgpu).
 *
 * `lr` is required (as in the reference). `learningRate` may be reassigned between steps (schedules); the other
 * hyper-parameters are fixed. `impl: 'fallback'` forces the tfjs-ops path (parity checks); it is not a
 * hyper-parameter. CAME has no bias correction, so `step` only has to be a positive integer.
 */
export function came(options: CameOptions & { impl?: CameImpl }): CamePlugin {
  const { impl, rest } = splitImpl(options, 'came');
  if (options == null) CAME_HPARAMS.resolve(options); // throws the "lr is required" error
  const head = optimizerHead('came', CAME_HPARAMS, CAME_HPARAMS.resolve(rest));
  return Object.assign(head, {
    describe() {
      return {
        ...head.hparams,
        impl,
        reference: 'came_pytorch.CAME (yangluo7/CAME)',
        state: 'rank >= 2: 4mn + 8(m+n) bytes (last two dims factored); rank <= 1: 8n bytes',
      };
    },
    init(param) {
      return createCameState(param.name, param.shape) as OptimizerState & CameState;
    },
    update(param, grad, state, step) {
      checkStep(step, 'came');
      const keys = Object.keys(stateShapes(param.shape));
      if (!holdsCameState(state, keys)) {
        throw new InputError(
          `came: the state of parameter '${param.name}' [${param.shape}] must be variables ${keys.join(', ')} (keys: ${Object.keys(state).join(', ') || 'none'}): create it with came().init`,
        );
      }
      cameUpdate(param, grad, state, head.hparams, { impl });
    },
    stateBytes(shape) {
      return cameStateBytes(shape);
    },
  } satisfies PluginMethods<CamePlugin>);
}

/**
 * `came()` from hyper-parameters under came_pytorch's names, flat as the golden fixtures write them
 * (`{lr, beta1, beta2, beta3, eps1, eps2, clip_threshold, weight_decay}`) or as its constructor takes them
 * (`betas: [β1, β2, β3]`, `eps: [ε1, ε2]`). `lr` is required; missing others take the reference defaults.
 */
export function cameFromReferenceHparams(ref: CameReferenceHparams): CamePlugin {
  return came(CAME_HPARAMS.fromReference(ref) as CameOptions);
}
