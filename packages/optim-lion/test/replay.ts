import type { OptimizerPlugin } from '@kstar/core';
import { callUntyped } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { Lion, lionFromReferenceHparams } from '../src/index.ts';
import type { LionHp, SignAwareErr } from './helpers.ts';
import { goldenLionRuns, lionStep64, relErr, signAwareErr, takenSigns } from './helpers.ts';

export interface ReplayResult {
  runIndex: number;
  /** errors[step][param]: the sign-aware comparison with the golden parameters at each recorded step. */
  errors: Record<number, Record<string, SignAwareErr>>;
  /** Worst max|p − p_ref| / RMS(p_ref) over the elements that took the reference's direction at every step. */
  worst: number;
  /** Worst (differing elements / elements) over the recorded steps, all parameters together. */
  worstDifferingFraction: number;
  /** Elements differing from the golden by > lr/2 at the last step, of `elements`. */
  differingAtEnd: number;
  elements: number;
  /**
   * Per-step update directions compared with the independent float64 reference: every (step, param, element)
   * whose direction differed, with the reference's |c| there (tiny when the cause is float32 rounding).
   */
  directionFlips: {
    step: number;
    param: string;
    index: number;
    absC: number;
    /** |c| / (|β1·m| + |(1−β1)·g|): float32 rounding of the terms is ~1e-7 of them. */
    relC: number;
    ours: number;
    ref: number;
  }[];
  /** Worst max|p64 − p_golden| / RMS: the float64 JS reference against lion_pytorch (checks the reference). */
  reference64VsGolden: number;
  /** Final parameter values (copies). */
  final: Record<string, Float32Array>;
}

export type Driver = { kind: 'plugin'; plugin: OptimizerPlugin } | { kind: 'optimizer'; optimizer: Lion };

const read = async (t: tf.Tensor) => Float32Array.from((await t.data()) as Float32Array);

/** lion_pytorch's hyper-parameters of a golden run, under the float64 reference's names. */
export function hpOf(h: Record<string, number>): LionHp {
  return { lr: h.lr!, beta1: h.beta1!, beta2: h.beta2!, weightDecay: h.weight_decay ?? 0 };
}

/**
 * Replays golden Lion run `runIndex` through a plugin (init per param, update per step) or the drop-in class
 * (`applyGradients` by name), alongside the float64 reference, on the active backend.
 */
export async function replayLion(driver: Driver, prefix: string, runIndex?: number): Promise<ReplayResult> {
  const { golden, runs } = goldenLionRuns();
  const { run, index } = runIndex == null ? runs[0]! : runs.find((r) => r.index === runIndex)!;
  const hp = hpOf(run.hparams);
  const names = run.params_used;
  const vars: Record<string, tf.Variable> = {};
  const ref: Record<string, { p: Float64Array; m: Float64Array }> = {};
  for (const name of names) {
    const shape = golden.shapes[name]!;
    // Created in a tidy: the variable is the only holder of its buffer (refCount 1), so the kernel runs in place.
    vars[name] = tf.tidy(() =>
      tf.variable(tf.tensor(golden.init[name]!, shape, 'float32'), true, `${prefix}/${name}`),
    );
    ref[name] = { p: Float64Array.from(golden.init[name]!), m: new Float64Array(golden.init[name]!.length) };
  }
  const states =
    driver.kind === 'plugin'
      ? Object.fromEntries(
          names.map((name) => [
            name,
            driver.plugin.init({
              name: `${prefix}/${name}`,
              shape: golden.shapes[name]!,
              role: name === 'E' ? 'embedding' : golden.shapes[name]!.length === 1 ? 'vector' : 'matrix',
            }),
          ]),
        )
      : {};
  const out: ReplayResult = {
    runIndex: index,
    errors: {},
    worst: 0,
    worstDifferingFraction: 0,
    differingAtEnd: 0,
    elements: names.reduce((a, n) => a + golden.init[n]!.length, 0),
    directionFlips: [],
    reference64VsGolden: 0,
    final: {},
  };
  let before: Record<string, Float32Array> = {};
  for (const name of names) before[name] = await read(vars[name]!);
  for (let t = 1; t <= golden.grads.length; t++) {
    // The gradients as float32 tensors; the float64 reference uses the same float32-rounded values.
    const g32: Record<string, Float32Array> = {};
    for (const name of names) g32[name] = Float32Array.from(golden.grads[t - 1]![name]!);
    if (driver.kind === 'plugin') {
      for (const name of names) {
        const g = tf.tensor(g32[name]!, golden.shapes[name]!, 'float32');
        driver.plugin.update(vars[name]!, g, states[name]!, t);
        g.dispose();
      }
    } else {
      const grads: tf.NamedTensorMap = {};
      for (const name of names) grads[`${prefix}/${name}`] = tf.tensor(g32[name]!, golden.shapes[name]!);
      driver.optimizer.applyGradients(grads);
      tf.dispose(grads);
    }
    const now: Record<string, Float32Array> = {};
    for (const name of names) {
      now[name] = await read(vars[name]!);
      const { sign, absC, scale } = lionStep64(ref[name]!.p, g32[name]!, ref[name]!.m, hp);
      const ours = takenSigns(before[name]!, now[name]!, hp);
      for (let i = 0; i < ours.length; i++) {
        if (ours[i] !== sign[i]) {
          out.directionFlips.push({
            step: t,
            param: name,
            index: i,
            absC: absC[i]!,
            relC: scale[i]! === 0 ? 0 : absC[i]! / scale[i]!,
            ours: ours[i]!,
            ref: sign[i]!,
          });
        }
      }
    }
    before = now;
    const rec = run.after.find((a) => a.step === t);
    if (rec == null) continue;
    out.errors[t] = {};
    let differing = 0;
    for (const name of names) {
      // The reference above ran on float32-rounded gradients; lion_pytorch on float64 ones: the directions agree
      // unless c is within rounding of 0, and the magnitudes do not depend on g at all.
      out.reference64VsGolden = Math.max(out.reference64VsGolden, relErr(ref[name]!.p, rec.params[name]!));
      const e = signAwareErr(now[name]!, rec.params[name]!, hp.lr);
      out.errors[t]![name] = e;
      out.worst = Math.max(out.worst, e.relErr);
      differing += e.differing;
    }
    out.worstDifferingFraction = Math.max(out.worstDifferingFraction, differing / out.elements);
    out.differingAtEnd = differing;
  }
  for (const s of Object.values(states)) tf.dispose(Object.values(s));
  for (const name of names) {
    out.final[name] = before[name]!;
    vars[name]!.dispose();
  }
  return out;
}

/** One line for the test log: worst error, differing elements, direction flips with their |c|. */
export function summary(label: string, r: ReplayResult): string {
  const flips = r.directionFlips.length;
  const maxC = flips ? Math.max(...r.directionFlips.map((f) => f.relC)).toExponential(2) : '-';
  return (
    `[optim-lion] golden run ${r.runIndex} (${label}): worst rel err ${r.worst.toExponential(3)} of RMS over ` +
    `same-direction elements; elements differing by > lr/2: ${r.differingAtEnd}/${r.elements} at step 10 ` +
    `(worst fraction ${r.worstDifferingFraction}); per-step direction flips vs float64: ${flips} ` +
    `(max |c_ref|/(|β1·m|+|(1−β1)·g|) of a flip ${maxC}); float64 reference vs golden ${r.reference64VsGolden.toExponential(2)}`
  );
}

/** The acceptance bar of a golden replay: ≤ 0.1% differing elements, the rest within `tol` of RMS. */
export function expectGolden(
  r: ReplayResult,
  tol: number,
  expect: (v: unknown, m?: string) => { toBeLessThanOrEqual(x: number): void },
): void {
  expect(r.worst, 'same-direction elements: max|p − ref| / RMS(ref)').toBeLessThanOrEqual(tol);
  expect(r.worstDifferingFraction, 'fraction of elements whose direction differed').toBeLessThanOrEqual(1e-3);
  // Flipped directions must come from c within float32 rounding of zero, never from a real disagreement.
  for (const f of r.directionFlips) {
    expect(f.relC, `relative |c| of the flip ${JSON.stringify(f)}`).toBeLessThanOrEqual(1e-5);
  }
}

/**
 * Every golden Lion run on the active backend, through the plugin (its native kernel, in place) and the drop-in
 * class: each within `tol` of lion_pytorch at every recorded step (sign-aware).
 */
export async function expectEveryGoldenRun(backend: string, tol: number): Promise<void> {
  for (const { run, index } of goldenLionRuns().runs) {
    const r = await replayLion(
      { kind: 'plugin', plugin: callUntyped(lionFromReferenceHparams, run.hparams) },
      `${backend}-plugin-${index}`,
      index,
    );
    console.log(summary(`plugin, ${backend} kernel`, r));
    expectGolden(r, tol, expect);
    const h = run.hparams;
    const opt = new Lion({ lr: h.lr, beta1: h.beta1, beta2: h.beta2, weightDecay: h.weight_decay });
    const d = await replayLion({ kind: 'optimizer', optimizer: opt }, `${backend}-dropin-${index}`, index);
    console.log(summary(`Lion class, ${backend} kernel`, d));
    expectGolden(d, tol, expect);
    opt.dispose();
  }
}
