import type { OptimizerPlugin } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import type { CAME } from '../src/index.ts';
import { goldenCameRuns, relErr } from './helpers.ts';

export interface ReplayResult {
  /** errors[step][param] = max|p − p_ref| / RMS(p_ref). */
  errors: Record<number, Record<string, number>>;
  worst: number;
  /** Where the worst error is. */
  worstAt: string;
  /** Final parameter values (copies). */
  final: Record<string, Float32Array>;
}

type Run = ReturnType<typeof goldenCameRuns>['runs'][number];

function paramVariables(run: Run, prefix: string) {
  const { golden } = goldenCameRuns();
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

async function check(run: Run, vars: Record<string, tf.Variable>, step: number, out: ReplayResult) {
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

async function finish(vars: Record<string, tf.Variable>, out: ReplayResult): Promise<ReplayResult> {
  for (const [name, v] of Object.entries(vars)) {
    out.final[name] = Float32Array.from(await v.data());
    v.dispose();
  }
  return out;
}

/**
 * Replays a golden CAME run through a K* optimizer plugin (init per param, update per step). `around` wraps each
 * step's updates (webgpu: a validation error scope).
 */
export async function replayPlugin(
  plugin: OptimizerPlugin,
  run: Run,
  prefix: string,
  around: (update: () => void) => Promise<void> = async (u) => u(),
): Promise<ReplayResult> {
  const { golden } = goldenCameRuns();
  const vars = paramVariables(run, prefix);
  const states = Object.fromEntries(
    run.params_used.map((name) => [
      name,
      plugin.init({
        name: `${prefix}/${name}`,
        shape: golden.shapes[name]!,
        role: name === 'E' ? 'embedding' : golden.shapes[name]!.length === 1 ? 'vector' : 'matrix',
      }),
    ]),
  );
  const out: ReplayResult = { errors: {}, worst: 0, worstAt: '', final: {} };
  for (let t = 1; t <= golden.grads.length; t++) {
    const grads = run.params_used.map((name) =>
      tf.tensor(golden.grads[t - 1]![name]!, golden.shapes[name]!, 'float32'),
    );
    await around(() => {
      run.params_used.forEach((name, i) => {
        plugin.update(vars[name]!, grads[i]!, states[name]!, t);
      });
    });
    tf.dispose(grads);
    await check(run, vars, t, out);
  }
  for (const s of Object.values(states)) tf.dispose(Object.values(s));
  return finish(vars, out);
}

/** Replays a golden CAME run through the drop-in `tf.train.Optimizer` (`applyGradients` by name). */
export async function replayOptimizer(opt: CAME, run: Run, prefix: string): Promise<ReplayResult> {
  const { golden } = goldenCameRuns();
  const vars = paramVariables(run, prefix);
  const out: ReplayResult = { errors: {}, worst: 0, worstAt: '', final: {} };
  for (let t = 1; t <= golden.grads.length; t++) {
    const grads: tf.NamedTensorMap = {};
    for (const name of run.params_used) {
      grads[`${prefix}/${name}`] = tf.tensor(golden.grads[t - 1]![name]!, golden.shapes[name]!, 'float32');
    }
    opt.applyGradients(grads);
    tf.dispose(grads);
    await check(run, vars, t, out);
  }
  return finish(vars, out);
}
