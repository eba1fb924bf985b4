import type { OptimizerPlugin } from '@kstar/core';
import { callUntyped, type ReplayResult, replayGoldenOptimizer, replayGoldenPlugin } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import type { Adafactor, AdafactorOptions } from '../src/index.ts';
import { adafactor, adafactorFromReferenceHparams, adafactorKernel } from '../src/index.ts';
import type { RefHp } from './helpers.ts';
import { Adafactor64, goldenAdafactorRuns, HF_DEFAULTS, numel, randn, relErr, rng } from './helpers.ts';

/** Wraps one native update (webgpu: a validation error scope); the default just runs it. */
export type Around = (update: () => void) => Promise<void>;
const plain: Around = async (u) => u();

export type { ReplayResult };

function goldenRun(runIndex: number) {
  const { golden, runs } = goldenAdafactorRuns();
  const r = runs.find((x) => x.index === runIndex);
  if (r == null) throw new Error(`golden run ${runIndex} is not an adafactor run`);
  return { golden, run: r.run };
}

/** Replays golden run `runIndex` through an optimizer plugin (init per param, update per step). */
export async function replayPlugin(
  plugin: OptimizerPlugin,
  runIndex: number,
  prefix: string,
  around: Around = plain,
): Promise<ReplayResult> {
  const { golden, run } = goldenRun(runIndex);
  const role = (name: string) => (name === 'E' ? 'embedding' : 'other');
  return replayGoldenPlugin(plugin, golden, run, prefix, { around, role });
}

/** Replays golden run `runIndex` through the drop-in `tf.Optimizer` (`applyGradients` by name). */
export async function replayOptimizer(
  opt: Adafactor,
  runIndex: number,
  prefix: string,
): Promise<ReplayResult> {
  const { golden, run } = goldenRun(runIndex);
  return replayGoldenOptimizer(opt, golden, run, prefix);
}

export function referenceHparams(runIndex: number): RefHp {
  const { run } = goldenRun(runIndex);
  return { ...HF_DEFAULTS, ...(run.hparams as Partial<RefHp>) };
}

/** Configurations of the random parity tests: every switch of HF's Adafactor in at least one. */
export const PARITY_CONFIGS: { label: string; options: AdafactorOptions; ref: Partial<RefHp> }[] = [
  { label: 'HF defaults (relative step, scale)', options: {}, ref: {} },
  {
    label: 'warmupInit, β1 0.8, wd 0.1, clip 0.5',
    options: { warmupInit: true, beta1: 0.8, weightDecay: 0.1, clipThreshold: 0.5 },
    ref: { warmup_init: true, beta1: 0.8, weight_decay: 0.1, clip_threshold: 0.5 },
  },
  {
    label: 'lr 0.05, scale, decay −0.5, eps (1e-20, 1e-2)',
    options: { relativeStep: false, lr: 0.05, decayRate: -0.5, eps1: 1e-20, eps2: 1e-2 },
    ref: { relative_step: false, lr: 0.05, decay_rate: -0.5, eps1: 1e-20, eps2: 1e-2 },
  },
  {
    label: 'lr 0.02, no scale, β1 0.9, wd 0.05, clip 2',
    options: {
      relativeStep: false,
      scaleParameter: false,
      lr: 0.02,
      beta1: 0.9,
      weightDecay: 0.05,
      clipThreshold: 2,
    },
    ref: {
      relative_step: false,
      scale_parameter: false,
      lr: 0.02,
      beta1: 0.9,
      weight_decay: 0.05,
      clip_threshold: 2,
    },
  },
];

/** Shapes of the random parity tests: matrix, 3-D and 4-D (batched factoring), degenerate m or n = 1, vectors, a scalar. */
export const PARITY_SHAPES: number[][] = [[17, 9], [3, 4, 6], [2, 2, 3, 5], [1, 7], [6, 1], [5], [300], []];

export interface ParityRow {
  config: string;
  nativeVsRef: number;
  fallbackVsRef: number;
  nativeVsFallback: number;
  /** max over shapes of max|p_T − p_0| / RMS(p_0): shows the update is not trivially small. */
  moved: number;
}

/**
 * For each config: 6 steps on every PARITY_SHAPE with the native kernel (asserted native), the tfjs-ops fallback
 * and the float64 reference; gradients of varying scale, one with zero rows/elements (embedding-like).
 */
export async function parity(around: Around = plain, steps = 6): Promise<ParityRow[]> {
  const rows: ParityRow[] = [];
  for (const [ci, cfg] of PARITY_CONFIGS.entries()) {
    const nat = adafactor(cfg.options);
    const fb = adafactor({ ...cfg.options, impl: 'fallback' });
    const hp: RefHp = { ...HF_DEFAULTS, ...cfg.ref };
    const row: ParityRow = {
      config: cfg.label,
      nativeVsRef: 0,
      fallbackVsRef: 0,
      nativeVsFallback: 0,
      moved: 0,
    };
    for (const [si, shape] of PARITY_SHAPES.entries()) {
      const next = rng(1000 * ci + si);
      const n = numel(shape);
      const p0 = randn(next, n, 0.5);
      // slice(): the cpu backend keeps the array it is given; both variables must not share one buffer.
      const mk = (tag: string) =>
        tf.tidy(() => tf.variable(tf.tensor(p0.slice(), shape), true, `parity/${tag}/${ci}/${si}`));
      const pn = mk('native');
      const pf = mk('fallback');
      const sn = nat.init({ name: pn.name, shape, role: 'other' });
      const sf = fb.init({ name: pf.name, shape, role: 'other' });
      const ref = new Adafactor64(shape, hp);
      const pr = Float64Array.from(p0);
      for (let t = 1; t <= steps; t++) {
        const g = randn(next, n, 10 ** ((t % 3) - 1));
        if (t === 2 && n > 1) for (let i = 0; i < n; i += 3) g[i] = 0; // zero entries (rows untouched in E)
        const gt = tf.tensor(g, shape);
        expect(callUntyped(adafactorKernel.which, { param: pn, grad: gt, state: sn, hp: {} })).toBe('native');
        await around(() => nat.update(pn, gt, sn, t));
        fb.update(pf, gt, sf, t);
        ref.update(pr, g);
        gt.dispose();
      }
      const [an, af] = [await pn.data(), await pf.data()];
      row.nativeVsRef = Math.max(row.nativeVsRef, relErr(an, pr));
      row.fallbackVsRef = Math.max(row.fallbackVsRef, relErr(af, pr));
      row.nativeVsFallback = Math.max(row.nativeVsFallback, relErr(an, af));
      let moved = 0;
      for (let i = 0; i < n; i++) moved = Math.max(moved, Math.abs(pr[i]! - p0[i]!));
      row.moved = Math.max(
        row.moved,
        moved / Math.max(1e-12, Math.sqrt(p0.reduce((a, x) => a + x * x, 0) / n)),
      );
      tf.dispose([pn, pf, ...Object.values(sn), ...Object.values(sf)]);
    }
    rows.push(row);
  }
  return rows;
}

export const TOL = 1e-5;

export function checkParity(rows: ParityRow[]): void {
  for (const r of rows) {
    expect(r.nativeVsRef, `${r.config}: native vs float64`).toBeLessThanOrEqual(TOL);
    expect(r.fallbackVsRef, `${r.config}: fallback vs float64`).toBeLessThanOrEqual(TOL);
    expect(r.nativeVsFallback, `${r.config}: native vs fallback`).toBeLessThanOrEqual(TOL);
    // The parameters moved well beyond the error (warmupInit moves them by only Σρ_t = 2.1e-5 of their RMS).
    expect(r.moved, `${r.config}: the parameters moved`).toBeGreaterThan(
      10 * Math.max(r.nativeVsRef, r.fallbackVsRef),
    );
    if (!r.config.startsWith('warmupInit')) expect(r.moved).toBeGreaterThan(100 * TOL);
  }
}

export function formatParity(backend: string, rows: ParityRow[]): string {
  const e = (x: number) => x.toExponential(1);
  return rows
    .map(
      (r) =>
        `[optim-adafactor] ${backend} parity "${r.config}": native-vs-f64 ${e(r.nativeVsRef)} | fallback-vs-f64 ${e(r.fallbackVsRef)} | native-vs-fallback ${e(r.nativeVsFallback)} | moved ${e(r.moved)}`,
    )
    .join('\n');
}

/** Replays both golden runs through the plugin (native kernel) and checks every recorded step. */
export async function goldenCheck(
  backend: string,
  around: Around = plain,
  impl: 'auto' | 'fallback' = 'auto',
) {
  const { runs } = goldenAdafactorRuns();
  const results: { index: number; worst: number; worstAt: string }[] = [];
  for (const { run, index } of runs) {
    const plugin = adafactor({
      ...callUntyped(adafactorFromReferenceHparams, run.hparams).hparams,
      impl,
    });
    const r = await replayPlugin(plugin, index, `golden-${backend}-${impl}-${index}`, around);
    expect(Object.keys(r.errors).map(Number)).toEqual(run.after.map((a) => a.step));
    for (const perParam of Object.values(r.errors)) {
      expect(Object.keys(perParam).sort()).toEqual([...run.params_used].sort());
      for (const e of Object.values(perParam)) expect(e).toBeLessThanOrEqual(TOL);
    }
    results.push({ index, worst: r.worst, worstAt: r.worstAt });
  }
  console.log(
    results
      .map(
        (r) =>
          `[optim-adafactor] golden run ${r.index} (${backend}, ${impl}) worst ${r.worst.toExponential(2)} at ${r.worstAt}`,
      )
      .join('\n'),
  );
  return results;
}
