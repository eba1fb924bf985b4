import { InputError, type OptimizerPlugin, type OptimizerState } from '@kstar/core';
import type { GPTModel } from '@kstar/gpt';
import { offloadEffective, offloadState, type StateOffloadPlugin } from '@kstar/offload';
import { adam8bit } from '@kstar/optim-adam8bit';
import type { AdamWPlugin } from '@kstar/optim-adamw';

/** Where a parameter group's optimizer state lives: the optimizer's own float32, 8-bit Adam moments, or host memory. */
export type StateChoice = 'float32' | '8bit' | 'offload';

const CHOICES: readonly StateChoice[] = ['float32', '8bit', 'offload'];

/** `--state-choices 8bit,offload`: the state placements the planner may use besides float32. */
export function parseStateChoices(text: string): StateChoice[] {
  const out: StateChoice[] = ['float32'];
  for (const raw of text.split(',')) {
    const c = raw.trim();
    if (c === '') continue;
    if (!CHOICES.includes(c as StateChoice)) {
      throw new InputError(
        `--state-choices: '${c}' is not a state placement: use a comma-separated list of ${CHOICES.join(', ')}`,
        'E_CONFIG',
      );
    }
    if (!out.includes(c as StateChoice)) out.push(c as StateChoice);
  }
  return out;
}

/** The placements usable for `optimizer` on `backend` (InputError for 8-bit without AdamW). */
export function usableStateChoices(
  choices: readonly StateChoice[],
  optimizer: string,
  backend: string,
): StateChoice[] {
  if (choices.includes('8bit') && optimizer !== 'adamw') {
    throw new InputError(
      `--state-choices 8bit: 8-bit state is Adam's (8-bit moments of AdamW's rule), the run uses '${optimizer}': use --optimizer adamw or drop 8bit`,
      'E_CONFIG',
    );
  }
  // Offload moves nothing where tensors already live in host memory (cpu, wasm): it would only cost time.
  return choices.filter((c) => c !== 'offload' || offloadEffective(backend));
}

/** A parameter group: the parameters a stage reads first (a tied weight belongs to its first reader). */
export interface StateGroup {
  name: string;
  params: string[];
  /** Device bytes of the group's state kept between updates, per placement. */
  bytes: Record<StateChoice, number>;
}

/** One group per stage that owns parameters, with the bytes of each placement. */
export function stateGroups(model: GPTModel, optimizer: OptimizerPlugin): StateGroup[] {
  const a8 = adam8bit();
  const seen = new Set<string>();
  const groups: StateGroup[] = [];
  for (const stage of model.stages) {
    const params = [...new Set(stage.params)].filter((n) => !seen.has(n));
    for (const n of params) seen.add(n);
    if (params.length === 0) continue;
    const sum = (
      f: (shape: readonly number[], role: 'embedding' | 'matrix' | 'vector' | 'other') => number,
    ) => params.reduce((s, n) => s + f(model.variables.get(n)!.shape, model.paramInfo(n).role), 0);
    groups.push({
      name: stage.name,
      params,
      bytes: {
        float32: sum((s, r) => optimizer.stateBytes(s, r)),
        '8bit': sum((s, r) => a8.stateBytes(s, r)),
        offload: 0,
      },
    });
  }
  return groups;
}

/** An optimizer whose parameters' state follows a per-parameter placement. */
export interface PlacedOptimizer extends OptimizerPlugin {
  /** Resolves when every state copy-out to host memory has landed. */
  settled(): Promise<void>;
  dispose(): void;
}

/**
 * `base` with each parameter's state placed per `placement` (parameter name → choice; absent: float32): 8-bit
 * parameters are updated by `adam8bit` with AdamW's hyper-parameters (the same rule on 8-bit block-quantized
 * moments), offloaded ones by `base` with its state in host memory (`offloadState`). Checkpoints and row-chunked
 * updates are refused with it (the trainer checks): each parameter's state has its own form.
 */
export function placedOptimizer(
  base: OptimizerPlugin,
  placement: ReadonlyMap<string, StateChoice>,
): PlacedOptimizer {
  const uses8bit = [...placement.values()].includes('8bit');
  const h = (base as AdamWPlugin).hparams;
  const a8 = uses8bit
    ? adam8bit({ lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: h.weightDecay })
    : undefined;
  const off: StateOffloadPlugin = offloadState(base, { offload: (p) => placement.get(p.name) === 'offload' });
  const owner = new Map<OptimizerState, OptimizerPlugin>();
  const plugin: PlacedOptimizer = {
    specificationVersion: base.specificationVersion,
    kind: 'optimizer',
    name: base.name,
    ...(base.needsAllGradients ? { needsAllGradients: true } : {}),
    describe() {
      const by: Record<string, string[]> = {};
      for (const [n, c] of placement) by[c] = [...(by[c] ?? []), n];
      return { ...off.describe(), statePlacement: by };
    },
    init(param) {
      const p = placement.get(param.name) === '8bit' ? a8! : off;
      const state = p.init(param);
      owner.set(state, p);
      return state;
    },
    update(param, grad, state, step, part) {
      (owner.get(state) ?? off).update(param, grad, state, step, part);
    },
    stateBytes: (shape, role) => base.stateBytes(shape, role),
    afterUpdate: () => off.afterUpdate(),
    settled: () => off.settled(),
    dispose: () => off.dispose(),
  };
  if (base.learningRate !== undefined) {
    Object.defineProperty(plugin, 'learningRate', {
      get: () => base.learningRate,
      set: (lr: number) => {
        base.learningRate = lr;
        if (a8) a8.learningRate = lr;
      },
      enumerable: true,
    });
  }
  return plugin;
}

/** `kstar train --state-choices` without a budget: nothing would plan the placements. */
export function requireBudgetForStateChoices(run: { stateChoices?: unknown; memoryBudget?: unknown }): void {
  if (run.stateChoices !== undefined && run.memoryBudget === undefined) {
    throw new InputError(
      '--state-choices needs --memory-budget (the planner picks the placements under it): add --memory-budget BYTES|auto',
      'E_CONFIG',
    );
  }
}

/**
 * `--state-choices` with options it cannot work with: --grad-clip with 8bit, checkpoints (an offloaded or 8-bit
 * parameter's state has its own form), row-chunked updates, ZeRO sharding, split24 master weights.
 */
export function checkStateChoices(config: {
  stateChoices?: string | undefined;
  saveDir?: string | undefined;
  resume?: string | undefined;
  updateChunkBytes?: number | undefined;
  sharding?: string | undefined;
  masterWeights?: string | undefined;
  gradClip?: number | undefined;
}): StateChoice[] | undefined {
  if (config.stateChoices === undefined) return undefined;
  const choices = parseStateChoices(config.stateChoices);
  const conflict =
    choices.includes('8bit') && config.gradClip !== undefined
      ? [
          '--grad-clip (8-bit groups are updated by adam8bit, outside the clipping wrapper)',
          'drop 8bit or --grad-clip',
        ]
      : config.saveDir !== undefined || config.resume !== undefined
        ? ['checkpoints (--save-dir/--resume)', 'drop --state-choices to save checkpoints']
        : config.updateChunkBytes !== undefined
          ? ['--update-chunk-bytes', 'drop one of them']
          : config.sharding !== undefined && config.sharding !== 'none'
            ? [`--sharding ${config.sharding}`, 'drop one of them']
            : config.masterWeights !== undefined && config.masterWeights !== 'fp32'
              ? [`--master-weights ${config.masterWeights}`, 'drop one of them']
              : undefined;
  if (conflict) {
    throw new InputError(
      `--state-choices ${config.stateChoices} does not work with ${conflict[0]}: ${conflict[1]}`,
      'E_CONFIG',
    );
  }
  return choices;
}

/**
 * `--offload-state` with options it cannot work with: the planner's own placements (--state-choices), checkpoints
 * (an offloaded parameter's state is not on the device to save), row-chunked updates, ZeRO sharding.
 */
export function checkOffloadState(config: {
  offloadState?: boolean | undefined;
  hostUpdate?: boolean | undefined;
  optimizer?: string | undefined;
  gradClip?: number | undefined;
  gradAccum?: number | undefined;
  stateChoices?: string | undefined;
  saveDir?: string | undefined;
  resume?: string | undefined;
  updateChunkBytes?: number | undefined;
  sharding?: string | undefined;
}): void {
  if (config.hostUpdate && !config.offloadState) {
    throw new InputError('--host-update updates offloaded state: add --offload-state', 'E_CONFIG');
  }
  if (config.hostUpdate && (config.optimizer ?? 'adamw') !== 'adamw') {
    throw new InputError(
      `--host-update computes AdamW's rule on the host; the run uses --optimizer ${config.optimizer}: use --optimizer adamw or drop --host-update`,
      'E_CONFIG',
    );
  }
  if (config.hostUpdate && (config.gradClip !== undefined || (config.gradAccum ?? 1) > 1)) {
    throw new InputError(
      '--host-update updates with the plain AdamW rule, outside --grad-clip and --grad-accum wrappers: drop one of them',
      'E_CONFIG',
    );
  }
  if (!config.offloadState) return;
  const conflict =
    config.stateChoices !== undefined
      ? `--state-choices ${config.stateChoices} (the planner places state itself)`
      : config.saveDir !== undefined || config.resume !== undefined
        ? 'checkpoints (--save-dir/--resume)'
        : config.updateChunkBytes !== undefined
          ? '--update-chunk-bytes'
          : config.sharding !== undefined && config.sharding !== 'none'
            ? `--sharding ${config.sharding}`
            : undefined;
  if (conflict) {
    throw new InputError(`--offload-state does not work with ${conflict}: drop one of them`, 'E_CONFIG');
  }
}

/**
 * Device bytes of optimizer state under `--offload-state`: the state of at most two parameters at once (the one
 * being updated and the one whose copy-out is landing), so twice the largest parameter's.
 */
export function offloadedStateDeviceBytes(
  model: GPTModel,
  optimizer: { stateBytes: OptimizerPlugin['stateBytes'] },
): number {
  let largest = 0;
  for (const [name, v] of model.variables)
    largest = Math.max(largest, optimizer.stateBytes(v.shape, model.paramInfo(name).role));
  return 2 * largest;
}
