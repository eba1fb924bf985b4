import type { OptimizerPlugin } from '@kstar/core';
import { initGoldenStates } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import type { AdamW } from '../src/index.ts';
import { goldenAdamW, relErr } from './helpers.ts';

export interface ReplayResult {
  /** errors[step][param] = max|p − p_ref| / RMS(p_ref). */
  errors: Record<number, Record<string, number>>;
  worst: number;
  /** Final parameter values (copies). */
  final: Record<string, Float32Array>;
}

function paramVariables(prefix: string) {
  const { golden, run } = goldenAdamW();
  const vars: Record<string, tf.Variable> = {};
  for (const name of run.params_used) {
    const shape = golden.shapes[name]!;
    // Created in a tidy: the variable is the only holder of its buffer (refCount 1), so the kernel runs in place.
    vars[name] = tf.tidy(() =>
      tf.variable(tf.tensor(golden.init[name]!, shape, 'float32'), true, `${prefix}/${name}`),
    );
  }
  return vars;
}

function check(vars: Record<string, tf.Variable>, step: number, out: ReplayResult): void {
  const { run } = goldenAdamW();
  const rec = run.after.find((a) => a.step === step);
  if (rec == null) return;
  out.errors[step] = {};
  for (const name of run.params_used) {
    const e = relErr(vars[name]!.dataSync(), rec.params[name]!);
    out.errors[step]![name] = e;
    out.worst = Math.max(out.worst, e);
  }
}

function finish(vars: Record<string, tf.Variable>, out: ReplayResult): ReplayResult {
  for (const [name, v] of Object.entries(vars)) {
    out.final[name] = Float32Array.from(v.dataSync());
    v.dispose();
  }
  return out;
}

/** Replays the golden AdamW run through a K* optimizer plugin (init per param, update per step). */
export function replayPlugin(plugin: OptimizerPlugin, prefix: string): ReplayResult {
  const { golden, run } = goldenAdamW();
  const vars = paramVariables(prefix);
  const states = initGoldenStates(plugin, golden, run, prefix, (name) =>
    name === 'E' ? 'embedding' : 'other',
  );
  const out: ReplayResult = { errors: {}, worst: 0, final: {} };
  for (let t = 1; t <= golden.grads.length; t++) {
    for (const name of run.params_used) {
      const g = tf.tensor(golden.grads[t - 1]![name]!, golden.shapes[name]!, 'float32');
      plugin.update(vars[name]!, g, states[name]!, t);
      g.dispose();
    }
    check(vars, t, out);
  }
  for (const s of Object.values(states)) tf.dispose(Object.values(s));
  return finish(vars, out);
}

/** Replays the golden AdamW run through the drop-in `tf.train.Optimizer` (`applyGradients` by name). */
export function replayOptimizer(opt: AdamW, prefix: string): ReplayResult {
  const { golden, run } = goldenAdamW();
  const vars = paramVariables(prefix);
  const out: ReplayResult = { errors: {}, worst: 0, final: {} };
  for (let t = 1; t <= golden.grads.length; t++) {
    const grads: tf.NamedTensorMap = {};
    for (const name of run.params_used) {
      grads[`${prefix}/${name}`] = tf.tensor(golden.grads[t - 1]![name]!, golden.shapes[name]!, 'float32');
    }
    opt.applyGradients(grads);
    tf.dispose(grads);
    check(vars, t, out);
  }
  return finish(vars, out);
}
