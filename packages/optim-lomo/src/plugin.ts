import {
  checkStep,
  type GradientPart,
  InputError,
  type OptimizerPlugin,
  type OptimizerState,
  type ParamInfo,
  PluginConflictError,
  requireStateVariables,
  SPECIFICATION_VERSION,
  splitImpl,
} from '@kstar/core';
import type * as tf from '@tensorflow/tfjs-core';
import { type AdaLomoStateVars, adalomoUpdate } from './adalomo-kernel.ts';
import {
  ADALOMO_HPARAMS,
  type AdaLomoHparams,
  type AdaLomoOptions,
  type AdaLomoReferenceHparams,
  LOMO_HPARAMS,
  type LomoHparams,
  type LomoOptions,
  type LomoReferenceHparams,
  resolveAdaLomoHparams,
  resolveLomoHparams,
} from './hparams.ts';
import { lomoUpdate } from './lomo-kernel.ts';
import { type AdaLomoStateKey, adalomoStateBytes, adalomoStateShapes, createAdaLomoState } from './state.ts';

/** Which update implementation to use: the fused in-place kernel when it can run (`auto`) or tfjs ops. */
export type LomoImpl = 'auto' | 'fallback';

/** What `lomoStep` needs of a plugin: LOMO and AdaLomo both provide it. */
export interface FusedBackwardPlugin extends OptimizerPlugin {
  /** Learning rate of the next updates (schedules set it between steps; finite > 0). */
  learningRate: number;
  /** The global-norm clip threshold, or null: when set, every step must go through `lomoStep` (two passes). */
  readonly clipGradNorm: number | null;
  /**
   * The multiplier of every gradient in the next updates: min(1, clipGradNorm/(‖g‖ + 1e-6)) from the norm pass.
   * `lomoStep` sets it before the update pass and resets it to null after. null: 1 without `clipGradNorm`; with
   * `clipGradNorm` an update then throws (the reference's "call grad_norm before fused_backward").
   */
  gradScale: number | null;
}

export interface LomoPlugin extends FusedBackwardPlugin {
  readonly name: 'lomo';
  /** A frozen snapshot of the hyper-parameters the next update uses (`lr` follows `learningRate`). */
  readonly hparams: LomoHparams;
  /** LOMO keeps no state: `{}`. */
  init(param: ParamInfo): OptimizerState;
}

export interface AdaLomoPlugin extends FusedBackwardPlugin {
  readonly name: 'adalomo';
  readonly hparams: AdaLomoHparams;
  /** `exp_avg_sq_row` + `exp_avg_sq_col` (rank ≥ 2) or `exp_avg_sq` (rank ≤ 1). */
  init(param: ParamInfo): OptimizerState & AdaLomoStateVars;
}

/** The gradient multiplier of the next update, or a clear error when the norm pass did not run. */
function scaleFor(who: string, clipGradNorm: number | null, gradScale: number | null): number {
  if (gradScale != null) return gradScale;
  if (clipGradNorm == null) return 1;
  throw new PluginConflictError(
    `${who}: clipGradNorm = ${clipGradNorm} needs the global gradient norm before any parameter moves, but no norm pass ran for this step: train with \`await lomoStep(engine, batch)\` (two backward passes), or drop clipGradNorm`,
  );
}

function checkGradScale(v: unknown, who: string): number | null {
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new InputError(
      `${who}: gradScale = ${String(v)} is invalid: it must be a finite number ≥ 0, or null`,
    );
  }
  return v;
}

/** Adds the shared `learningRate`, `gradScale` and `clipGradNorm` accessors. */
function withAccessors<H extends LomoHparams, P extends object>(
  plugin: P,
  get: () => H,
  set: (h: H) => void,
  scale: { value: number | null },
  who: string,
): P & Pick<FusedBackwardPlugin, 'learningRate' | 'gradScale' | 'clipGradNorm'> {
  Object.defineProperty(plugin, 'learningRate', {
    enumerable: true,
    get: () => get().lr,
    set: (lr: number) => set(Object.freeze({ ...get(), lr: LOMO_HPARAMS.check('lr', lr, who) })),
  });
  Object.defineProperty(plugin, 'gradScale', {
    enumerable: true,
    get: () => scale.value,
    set: (v: number | null) => {
      scale.value = checkGradScale(v, who);
    },
  });
  Object.defineProperty(plugin, 'clipGradNorm', { enumerable: true, get: () => get().clipGradNorm });
  // The three accessors were defined above, which the type of `plugin` cannot see.
  return Object.preventExtensions(plugin) as P &
    Pick<FusedBackwardPlugin, 'learningRate' | 'gradScale' | 'clipGradNorm'>;
}

/**
 * LOMO (Lv et al. 2024; `lomo_optim.Lomo`): SGD fused into the backward pass. With `TrainingEngine` in
 * `mode: 'segmented'` and gradient release (the default), each segment's gradients update its weights and are
 * freed before the next segment's backward starts, so no optimizer state and at most one segment's gradients are
 * alive. Update: g ← clamp(g, ±clipValue)·gradScale; p ← p·(1 − lr·weightDecay) − lr·g, in place through
 * `KstarLomo`. `clipGradNorm` needs `lomoStep` (a norm pass first). Gradient accumulation is impossible.
 */
export function lomo(options: LomoOptions & { impl?: LomoImpl } = {}): LomoPlugin {
  const { impl, rest } = splitImpl(options, 'lomo');
  let hparams = resolveLomoHparams(rest, 'lomo');
  const scale = { value: null as number | null };
  const plugin = {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'optimizer' as const,
    name: 'lomo' as const,
    get hparams() {
      return hparams;
    },
    describe() {
      return { ...hparams, impl, stateBytes: '0 (no state; gradients freed inside the backward pass)' };
    },
    init(_param: ParamInfo): OptimizerState {
      return {};
    },
    // SGD is linear in g: applying a tied weight's parts one by one equals applying their sum, when the decay
    // p·(1 − lr·wd) is applied once (with the first part). Clipping by value (clamp of the sum) is not linear.
    get acceptsPartialGradients() {
      return hparams.clipValue == null;
    },
    update(param: tf.Variable, grad: tf.Tensor, _state: OptimizerState, step: number, part?: GradientPart) {
      checkStep(step, 'lomo');
      if (part != null && hparams.clipValue != null) {
        throw new PluginConflictError(
          `lomo: clipValue = ${hparams.clipValue} clamps the whole gradient, so partial gradients cannot be applied one by one: let the engine sum them (acceptsPartialGradients is false with clipValue)`,
        );
      }
      const gradScale = scaleFor('lomo', hparams.clipGradNorm, scale.value);
      const weightDecay = part == null || part.first ? hparams.weightDecay : 0;
      lomoUpdate(
        param,
        grad,
        { lr: hparams.lr, weightDecay, clipValue: hparams.clipValue, gradScale },
        { impl },
      );
    },
    stateBytes(_shape: readonly number[]) {
      return 0;
    },
  };
  return withAccessors(
    plugin,
    () => hparams,
    (h) => (hparams = h),
    scale,
    'lomo',
  );
}

/**
 * AdaLomo (Lv et al. 2023; `lomo_optim.AdaLomo`): Adafactor without momentum, fused into the backward pass.
 * Factored second moment (row/column means of g² + eps1 over the LAST two dims) for rank ≥ 2 — the reference
 * handles rank 2 only; rank > 2 (leading dims a batch) is K*'s extension —, a full one for vectors, β̂2t =
 * 1 − t^decayRate, update clipping by RMS(U)/clipThreshold, lr scaled by max(eps2, RMS(p)) and weight decay
 * p·(1 − lr·max(eps2, RMS(p))·wd). The engine's 1-based `step` is the reference's `step_num`. In place through
 * `KstarAdaLomo`. `lossScale` is recorded, not applied (a no-op in float32 up to rounding).
 */
export function adalomo(options: AdaLomoOptions & { impl?: LomoImpl } = {}): AdaLomoPlugin {
  const { impl, rest } = splitImpl(options, 'adalomo');
  let hparams = resolveAdaLomoHparams(rest, 'adalomo');
  const scale = { value: null as number | null };
  const plugin = {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'optimizer' as const,
    name: 'adalomo' as const,
    get hparams() {
      return hparams;
    },
    describe() {
      return { ...hparams, impl, stateBytes: '4(m+n) per matrix (4·B(m+n) for [...B,m,n]), 4n per vector' };
    },
    init(param: ParamInfo) {
      return createAdaLomoState(param.name, param.shape) as OptimizerState & AdaLomoStateVars;
    },
    update(param: tf.Variable, grad: tf.Tensor, state: OptimizerState, step: number) {
      checkStep(step, 'adalomo');
      const expected = Object.keys(adalomoStateShapes(param.shape)) as AdaLomoStateKey[];
      const s: AdaLomoStateVars = requireStateVariables('adalomo', param, state, expected);
      const gradScale = scaleFor('adalomo', hparams.clipGradNorm, scale.value);
      adalomoUpdate(
        param,
        grad,
        s,
        {
          lr: hparams.lr,
          beta2t: 1 - step ** hparams.decayRate,
          eps1: hparams.eps1,
          eps2: hparams.eps2,
          clipThreshold: hparams.clipThreshold,
          weightDecay: hparams.weightDecay,
          clipValue: hparams.clipValue,
          gradScale,
        },
        { impl },
      );
    },
    stateBytes(shape: readonly number[]) {
      return adalomoStateBytes(shape);
    },
  };
  return withAccessors(
    plugin,
    () => hparams,
    (h) => (hparams = h),
    scale,
    'adalomo',
  );
}

/**
 * `lomo()` from `lomo_optim.Lomo` argument names (`{lr, clip_grad_norm, clip_grad_value, weight_decay}`); the
 * golden `sgd` run's `{lr}` replays as LOMO (torch SGD without momentum is the same update).
 */
export function lomoFromReferenceHparams(h: LomoReferenceHparams): LomoPlugin {
  return lomo(LOMO_HPARAMS.fromReference(h));
}

/**
 * `adalomo()` from `lomo_optim.AdaLomo` argument names (`{lr, loss_scale, eps: [eps1, eps2] | eps1, eps2,
 * clip_threshold, decay_rate, clip_grad_norm, clip_grad_value, weight_decay}`), as the golden run carries them.
 * `loss_scale` (1024 in the golden run) multiplies the loss and divides the gradients back: the identity up to
 * rounding, so it is accepted and recorded, not applied.
 */
export function adalomoFromReferenceHparams(h: AdaLomoReferenceHparams): AdaLomoPlugin {
  return adalomo(ADALOMO_HPARAMS.fromReference(h));
}
