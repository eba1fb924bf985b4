import type { OptimizerPlugin, OptimizerState, ParamInfo } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { relErr } from './compare.ts';
import type { GoldenOptimizers } from './golden.ts';
import { goldenRole } from './state-bytes.ts';

/** One run of the golden file (any hyper-parameter type). */
type GoldenRun = GoldenOptimizers<unknown>['runs'][number];
type Golden = Pick<GoldenOptimizers<unknown>, 'shapes' | 'init' | 'grads'>;

/** What a golden replay measured. */
export interface ReplayResult {
  /** errors[step][param] = max|p − p_ref| / RMS(p_ref). */
  errors: Record<number, Record<string, number>>;
  worst: number;
  /** Where the worst error is (`W after step 10`). */
  worstAt: string;
  /** Final parameter values (copies). */
  final: Record<string, Float32Array>;
}

export const emptyReplayResult = (): ReplayResult => ({ errors: {}, worst: 0, worstAt: '', final: {} });

/**
 * The run's parameters as float32 variables `${prefix}/${name}` holding the golden init. Created in a tidy: each
 * variable is the only holder of its buffer (refCount 1), so in-place kernels run in place.
 */
export function goldenVariables(golden: Golden, run: GoldenRun, prefix: string): Record<string, tf.Variable> {
  const vars: Record<string, tf.Variable> = {};
  for (const name of run.params_used) {
    vars[name] = tf.tidy(() =>
      tf.variable(tf.tensor(golden.init[name]!, golden.shapes[name]!, 'float32'), true, `${prefix}/${name}`),
    );
  }
  return vars;
}

/** Step t's golden gradients (t from 1) as new tensors named like `goldenVariables` (the caller disposes them). */
export function goldenGradients(
  golden: Golden,
  run: GoldenRun,
  t: number,
  prefix: string,
): tf.NamedTensorMap {
  const grads: tf.NamedTensorMap = {};
  for (const name of run.params_used) {
    grads[`${prefix}/${name}`] = tf.tensor(golden.grads[t - 1]![name]!, golden.shapes[name]!, 'float32');
  }
  return grads;
}

/** At a step the golden file records: every parameter's `relErr` into `out.errors`, the worst into `out.worst`. */
export async function recordGoldenErrors(
  run: GoldenRun,
  vars: Record<string, tf.Variable>,
  step: number,
  out: ReplayResult,
): Promise<void> {
  const rec = run.after.find((a) => a.step === step);
  if (rec == null) return;
  out.errors[step] = {};
  for (const name of run.params_used) {
    const e = relErr(await vars[name]!.data(), rec.params[name]!);
    out.errors[step]![name] = e;
    if (e > out.worst) {
      out.worst = e;
      out.worstAt = `${name} after step ${step}`;
    }
  }
}

/** Copies the variables' final values into `out.final` and disposes them. */
export async function finishReplay(
  vars: Record<string, tf.Variable>,
  out: ReplayResult,
): Promise<ReplayResult> {
  for (const [name, v] of Object.entries(vars)) {
    out.final[name] = Float32Array.from(await v.data());
    v.dispose();
  }
  return out;
}

/** Replays a golden run through a drop-in `tf.Optimizer` (`applyGradients` by variable name, one call a step). */
export async function replayGoldenOptimizer(
  opt: tf.Optimizer,
  golden: Golden,
  run: GoldenRun,
  prefix: string,
): Promise<ReplayResult> {
  const vars = goldenVariables(golden, run, prefix);
  const out = emptyReplayResult();
  for (let t = 1; t <= golden.grads.length; t++) {
    const grads = goldenGradients(golden, run, t, prefix);
    opt.applyGradients(grads);
    tf.dispose(grads);
    await recordGoldenErrors(run, vars, t, out);
  }
  return finishReplay(vars, out);
}

/** How `replayGoldenPlugin` runs each update and describes each parameter. */
export interface PluginReplayOptions {
  /** Wraps one parameter's update (webgpu: a validation error scope); the default just runs it. */
  around?: (update: () => void) => Promise<void>;
  /** The role each parameter's state is created for (default `goldenRole`). */
  role?: (name: string, shape: number[]) => ParamInfo['role'];
}

/**
 * Replays a golden run through an optimizer plugin: a state per parameter (`initGoldenStates`), then every step's
 * updates parameter by parameter, the errors recorded at the steps the golden file records. The states are disposed;
 * the result keeps the final values.
 */
export async function replayGoldenPlugin(
  plugin: OptimizerPlugin,
  golden: Golden,
  run: GoldenRun,
  prefix: string,
  options: PluginReplayOptions = {},
): Promise<ReplayResult> {
  const around = options.around ?? (async (update) => update());
  const vars = goldenVariables(golden, run, prefix);
  const states = initGoldenStates(plugin, golden, run, prefix, options.role);
  const out = emptyReplayResult();
  for (let t = 1; t <= golden.grads.length; t++) {
    for (const name of run.params_used) {
      const g = tf.tensor(golden.grads[t - 1]![name]!, golden.shapes[name]!, 'float32');
      await around(() => plugin.update(vars[name]!, g, states[name]!, t));
      g.dispose();
    }
    await recordGoldenErrors(run, vars, t, out);
  }
  for (const s of Object.values(states)) tf.dispose(Object.values(s));
  return finishReplay(vars, out);
}

/** A fresh optimizer state per parameter of the run, named like `goldenVariables`; `role` defaults to `goldenRole`. */
export function initGoldenStates(
  plugin: OptimizerPlugin,
  golden: Golden,
  run: GoldenRun,
  prefix: string,
  role: (name: string, shape: number[]) => ParamInfo['role'] = goldenRole,
): Record<string, OptimizerState> {
  return Object.fromEntries(
    run.params_used.map((name) => {
      const shape = golden.shapes[name]!;
      return [name, plugin.init({ name: `${prefix}/${name}`, shape, role: role(name, shape) })];
    }),
  );
}

/**
 * Two runs ended bit-identical: every variable of `a` has the same float32 bits in `b` (the drop-in class against
 * its plugin on the same golden replay).
 */
export function expectSameFinalBits(
  a: { final: Record<string, Float32Array> },
  b: { final: Record<string, Float32Array> },
): void {
  for (const [name, values] of Object.entries(a.final)) {
    expect(b.final[name], name).toBeDefined();
    expect(new Uint32Array(values.buffer)).toEqual(new Uint32Array(b.final[name]!.buffer));
  }
}
