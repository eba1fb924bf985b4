import type { OptimizerState } from '@kstar/core';
import { callUntyped } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import {
  type LazyAdagrad,
  type LazyAdagradPlugin,
  lazyAdagrad,
  lazyAdagradFromReferenceHparams,
} from '../src/index.ts';
import { adagradStep64, goldenAdagradRun, measuredUniqueBytes, relErr } from './helpers.ts';

export type Driver =
  | { kind: 'plugin'; plugin: LazyAdagradPlugin }
  | { kind: 'optimizer'; optimizer: LazyAdagrad };

export interface ReplayResult {
  runIndex: number;
  /** errors[step][param] = max|p − golden| / RMS(golden). */
  errors: Record<number, Record<string, number>>;
  worst: number;
  /** The float64 JS reference against torch (checks the reference itself). */
  reference64VsGolden: number;
  /** Rows of E allocated after each step (1…10), as the optimizer reports them. */
  rowsAllocatedE: number[];
  /** Measured unique state bytes of E after each step. */
  stateBytesE: number[];
  /** Rows of E whose accumulator AND parameter were untouched at a step where their gradient was zero: count of violations. */
  untouchedViolations: number;
}

const read = async (t: tf.Tensor) => Float32Array.from((await t.data()) as Float32Array);

/** Replays the golden Adagrad run through the plugin (init/update per param) or the drop-in class (by name). */
export async function replayAdagrad(driver: Driver, prefix: string): Promise<ReplayResult> {
  const { golden, run, index } = goldenAdagradRun();
  const hp = { lr: run.hparams.lr!, eps: run.hparams.eps!, init: run.hparams.initial_accumulator_value ?? 0 };
  const names = run.params_used;
  const vars: Record<string, tf.Variable> = {};
  const ref: Record<string, { p: Float64Array; acc: Float64Array }> = {};
  for (const name of names) {
    vars[name] = tf.tidy(() =>
      tf.variable(tf.tensor(golden.init[name]!, golden.shapes[name]!, 'float32'), true, `${prefix}/${name}`),
    );
    const n = golden.init[name]!.length;
    ref[name] = { p: Float64Array.from(golden.init[name]!), acc: new Float64Array(n).fill(hp.init) };
  }
  const states: Record<string, OptimizerState> =
    driver.kind === 'plugin'
      ? Object.fromEntries(
          names.map((name) => [
            name,
            driver.plugin.init({
              name,
              shape: golden.shapes[name]!,
              role: name === 'E' ? 'embedding' : golden.shapes[name]!.length === 2 ? 'matrix' : 'other',
            }),
          ]),
        )
      : {};
  const out: ReplayResult = {
    runIndex: index,
    errors: {},
    worst: 0,
    reference64VsGolden: 0,
    rowsAllocatedE: [],
    stateBytesE: [],
    untouchedViolations: 0,
  };
  const [V, d] = golden.shapes.E as [number, number];
  for (let t = 1; t <= golden.grads.length; t++) {
    const g32: Record<string, Float32Array> = {};
    for (const name of names) g32[name] = Float32Array.from(golden.grads[t - 1]![name]!);
    const eBefore = await read(vars.E!);
    if (driver.kind === 'plugin') {
      for (const name of names) {
        const g = tf.tensor(g32[name]!, golden.shapes[name]!, 'float32');
        driver.plugin.update(vars[name]!, g, states[name]!, t);
        g.dispose();
      }
      out.rowsAllocatedE.push(driver.plugin.rowsTouched(states.E!) ?? -1);
      out.stateBytesE.push(measuredUniqueBytes(Object.values(states.E!)));
    } else {
      const grads: tf.NamedTensorMap = {};
      for (const name of names) grads[`${prefix}/${name}`] = tf.tensor(g32[name]!, golden.shapes[name]!);
      driver.optimizer.applyGradients(grads);
      tf.dispose(grads);
      out.rowsAllocatedE.push(driver.optimizer.rowsTouched(`${prefix}/E`) ?? -1);
      out.stateBytesE.push(measuredUniqueBytes(Object.values(driver.optimizer.stateOf(`${prefix}/E`)!)));
    }
    // Rows of E with a zero gradient must keep their exact float32 values.
    const eAfter = await read(vars.E!);
    for (let r = 0; r < V; r++) {
      let zero = true;
      for (let j = 0; j < d; j++) if (g32.E![r * d + j] !== 0) zero = false;
      if (!zero) continue;
      for (let j = 0; j < d; j++) if (eAfter[r * d + j] !== eBefore[r * d + j]) out.untouchedViolations++;
    }
    for (const name of names) adagradStep64(ref[name]!.p, g32[name]!, ref[name]!.acc, hp);
    const rec = run.after.find((a) => a.step === t);
    if (rec == null) continue;
    out.errors[t] = {};
    for (const name of names) {
      const e = relErr(await read(vars[name]!), rec.params[name]!);
      out.errors[t]![name] = e;
      out.worst = Math.max(out.worst, e);
      out.reference64VsGolden = Math.max(out.reference64VsGolden, relErr(ref[name]!.p, rec.params[name]!));
    }
  }
  for (const s of Object.values(states)) tf.dispose(Object.values(s));
  for (const name of names) vars[name]!.dispose();
  return out;
}

/** The golden run through the plugin its reference hyper-parameters make (row-lazy E), on the active backend. */
export function replayReferencePlugin(prefix: string): Promise<ReplayResult> {
  const { run } = goldenAdagradRun();
  return replayAdagrad(
    { kind: 'plugin', plugin: callUntyped(lazyAdagradFromReferenceHparams, run.hparams) },
    prefix,
  );
}

/** The golden run through the tfjs-ops fallback (gather → update → scatter) with every matrix row-lazy. */
export function replayFallbackPlugin(prefix: string): Promise<ReplayResult> {
  const { lr, eps } = goldenAdagradRun().run.hparams;
  return replayAdagrad(
    { kind: 'plugin', plugin: lazyAdagrad({ lr, eps, lazyRows: 'matrices', impl: 'fallback' }) },
    prefix,
  );
}

export function summary(label: string, r: ReplayResult): string {
  const perStep = Object.entries(r.errors)
    .map(([t, e]) => `t${t} ${Math.max(...Object.values(e)).toExponential(2)}`)
    .join(', ');
  return (
    `[optim-lazy-adagrad] golden run ${r.runIndex} (${label}): worst max|p−ref|/RMS ${r.worst.toExponential(3)} ` +
    `(${perStep}); float64 reference vs torch ${r.reference64VsGolden.toExponential(2)}; ` +
    `E rows allocated per step [${r.rowsAllocatedE.join(', ')}]; E state bytes [${r.stateBytesE.join(', ')}]`
  );
}
