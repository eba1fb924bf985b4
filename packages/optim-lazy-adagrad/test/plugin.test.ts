import { InputError, TrainingEngine } from '@kstar/core';
import { callUntyped, onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { disposeModel, toyBatch, toyStagedModel } from '../bench/toy-model.ts';
import {
  LazyAdagrad,
  lazyAdagrad,
  lazyAdagradFromReferenceHparams,
  lazyAdagradKernel,
  lazyRowStateBytes,
  slabCapacity,
} from '../src/index.ts';
import {
  adagradStep64,
  goldenAdagradRun,
  maxAbsDiff,
  measuredUniqueBytes,
  nonzeroRows,
  randn,
  rng,
} from './helpers.ts';
import { replayAdagrad, replayFallbackPlugin, replayReferencePlugin, summary } from './replay.ts';

const TOL = 1e-5;
onBackend('cpu');

/** Rows of E with a nonzero gradient seen after each golden step (counted from the golden gradients). */
function goldenRowsSeen(): number[] {
  const { golden } = goldenAdagradRun();
  const [V, d] = golden.shapes.E as [number, number];
  const seen = new Set<number>();
  return golden.grads.map((g) => {
    for (const r of nonzeroRows(g.E!, V, d)) seen.add(r);
    return seen.size;
  });
}

describe('golden replay of torch.optim.Adagrad (cpu)', () => {
  it('plugin, row-lazy E (native kernel), every parameter within 1e-5 of RMS at every recorded step', async () => {
    const r = await replayReferencePlugin('cpu-plugin');
    console.log(summary('plugin, lazyRows embedding, cpu kernel', r));
    expect(r.worst).toBeLessThanOrEqual(TOL);
    // The float64 reference runs on float32-rounded gradients (as the kernels do), hence not 0.
    expect(r.reference64VsGolden).toBeLessThanOrEqual(1e-6);
    expect(r.untouchedViolations).toBe(0);
    const seen = goldenRowsSeen();
    expect(seen).toEqual([13, 27, 32, 37, 41, 45, 45, 48, 48, 48]); // the fixture, for the record
    expect(r.rowsAllocatedE).toEqual(seen);
    // Measured bytes = row map + slab (doubling from 8): exactly the formula.
    const [V, d] = [50, 16];
    expect(r.stateBytesE).toEqual(seen.map((n) => lazyRowStateBytes([V, d], n)));
    expect(r.stateBytesE).toEqual(seen.map((n) => 4 * V + 4 * d * slabCapacity(n, V)));
  });

  it('plugin, every matrix row-lazy, fallback (gather → update → scatter) path', async () => {
    const r = await replayFallbackPlugin('cpu-fallback');
    console.log(summary('plugin, lazyRows matrices, fallback ops', r));
    expect(r.worst).toBeLessThanOrEqual(TOL);
    expect(r.untouchedViolations).toBe(0);
    expect(r.rowsAllocatedE).toEqual(goldenRowsSeen());
  });

  it('plugin with lazyRows off (dense) and the drop-in LazyAdagrad class', async () => {
    const { run } = goldenAdagradRun();
    const dense = await replayAdagrad(
      { kind: 'plugin', plugin: lazyAdagrad({ lr: run.hparams.lr, eps: run.hparams.eps, lazyRows: 'off' }) },
      'cpu-dense',
    );
    console.log(summary('plugin, dense', dense));
    expect(dense.worst).toBeLessThanOrEqual(TOL);
    expect(dense.stateBytesE).toEqual(new Array(10).fill(50 * 16 * 4));
    const opt = new LazyAdagrad({ lr: run.hparams.lr, eps: run.hparams.eps });
    const c = await replayAdagrad({ kind: 'optimizer', optimizer: opt }, 'cpu-class');
    console.log(summary('LazyAdagrad class (rank-2 row-lazy)', c));
    expect(c.worst).toBeLessThanOrEqual(TOL);
    expect(c.untouchedViolations).toBe(0);
    expect(c.rowsAllocatedE).toEqual(goldenRowsSeen());
    opt.dispose();
  });
});

describe('update rule', () => {
  it('Keras eps placement (epsInsideSqrt) and initial accumulator, native and fallback vs float64', () => {
    const next = rng(5);
    const shape = [12, 7];
    const n = 84;
    for (const impl of ['auto', 'fallback'] as const) {
      const plugin = lazyAdagrad({
        lr: 0.05,
        eps: 1e-3,
        initialAccumulatorValue: 0.1,
        epsInsideSqrt: true,
        lazyRows: 'matrices',
        impl,
      });
      const init = randn(next, n);
      const p = tf.tidy(() => tf.variable(tf.tensor(init, shape), true, `keras-${impl}`));
      const s = plugin.init({ name: p.name, shape, role: 'matrix' });
      const ref = { p: Float64Array.from(init), acc: new Float64Array(n).fill(0.1) };
      for (let t = 1; t <= 5; t++) {
        const g = randn(next, n);
        for (let r = 0; r < 12; r++) if ((r + t) % 3 === 0) g.fill(0, r * 7, r * 7 + 7); // some rows untouched
        const gt = tf.tensor(g, shape);
        plugin.update(p, gt, s, t);
        gt.dispose();
        adagradStep64(ref.p, g, ref.acc, { lr: 0.05, eps: 1e-3, init: 0.1, epsInsideSqrt: true });
      }
      const err = maxAbsDiff(p.dataSync(), ref.p);
      console.log(
        `[optim-lazy-adagrad] keras eps placement (${impl}): max |p − p64| = ${err.toExponential(2)}`,
      );
      expect(err).toBeLessThan(1e-6);
      tf.dispose([p, ...Object.values(s)]);
    }
  });

  it('native kernel writes in place (same buffers, no new tensor) and declines a shared buffer', () => {
    const plugin = lazyAdagrad({ lr: 0.1, lazyRows: 'matrices' });
    const p = tf.tidy(() => tf.variable(tf.ones([20, 4]), true, 'inplace/E'));
    const s = plugin.init({ name: p.name, shape: [20, 4], role: 'embedding' });
    const g = tf.tidy(() => tf.concat([tf.fill([16, 4], 0.5), tf.zeros([4, 4])])); // 16 rows → capacity 16
    plugin.update(p, g, s, 1);
    const ids = [p.dataId, s.acc!.dataId, s.rowMap!.dataId];
    const count = tf.memory().numTensors;
    plugin.update(p, g, s, 2); // no new row: nothing reallocated
    expect([p.dataId, s.acc!.dataId, s.rowMap!.dataId]).toEqual(ids);
    expect(tf.memory().numTensors).toBe(count);
    const args = {
      param: p,
      grad: g,
      acc: s.acc as tf.Variable,
      hp: { lr: 0.1, eps: 1e-10, epsInsideSqrt: false },
    };
    expect(lazyAdagradKernel.which(args)).toBe('native');
    const clone = tf.clone(p);
    expect(lazyAdagradKernel.which(args)).toBe('fallback');
    clone.dispose();
    // Step 1: acc = 0.25, p = 1 − 0.1·0.5/0.5 = 0.9; step 2: acc = 0.5, p = 0.9 − 0.1·0.5/√0.5.
    const v = p.dataSync();
    expect(v[0]).toBeCloseTo(0.9 - 0.05 / Math.sqrt(0.5), 6);
    expect(v[16 * 4]).toBe(1);
    tf.dispose([p, g, ...Object.values(s)]);
  });

  it('rejects invalid options with InputError naming the field', () => {
    expect(() => lazyAdagrad({ lr: -1 })).toThrow(/lr = -1/);
    expect(() => lazyAdagrad({ eps: 0 })).toThrow(InputError);
    expect(() => lazyAdagrad({ window: 0 })).toThrow(/window = 0/);
    expect(() => callUntyped(lazyAdagrad, { lazyRows: 'rows' })).toThrow(/lazyRows/);
    expect(() => callUntyped(lazyAdagrad, { betas: 1 })).toThrow(/unknown option 'betas'/);
    expect(() => lazyAdagradFromReferenceHparams({ weight_decay: 0.1 })).toThrow(/weight_decay/);
    expect(() => lazyAdagradFromReferenceHparams({ lr_decay: 0.1 })).toThrow(/lr_decay/);
    const plugin = lazyAdagrad();
    plugin.learningRate = 0.3;
    expect(plugin.hparams.lr).toBe(0.3);
    expect(() => {
      plugin.learningRate = Number.NaN;
    }).toThrow(InputError);
  });
});

describe('drop-in LazyAdagrad class', () => {
  it('getWeights → setWeights restores bit-identical steps; getConfig/fromConfig round trip', async () => {
    const next = rng(11);
    const mk = (tag: string) => ({
      E: tf.tidy(() => tf.variable(tf.tensor(randn(rng(1), 40), [10, 4]), true, `${tag}/E`)),
      b: tf.tidy(() => tf.variable(tf.tensor(randn(rng(2), 4)), true, `${tag}/b`)),
    });
    const grads = Array.from({ length: 5 }, (_, t) => {
      const e = randn(next, 40);
      for (let r = 0; r < 10; r++) if ((r * 7 + t) % 4 !== 0) e.fill(0, r * 4, r * 4 + 4);
      return { E: e, b: randn(next, 4) };
    });
    const step = (opt: LazyAdagrad, tag: string, t: number) => {
      const gm = { [`${tag}/E`]: tf.tensor(grads[t]!.E, [10, 4]), [`${tag}/b`]: tf.tensor(grads[t]!.b) };
      opt.applyGradients(gm);
      tf.dispose(Object.values(gm));
    };
    const a = mk('cls-a');
    const opt = new LazyAdagrad({ lr: 0.1 });
    for (let t = 0; t < 3; t++) step(opt, 'cls-a', t);
    const weights = await opt.getWeights();
    expect(weights.map((w) => w.name)).toEqual(['iter', 'cls-a/E/rowMap', 'cls-a/E/acc', 'cls-a/b/acc']);
    const cfg = opt.getConfig();
    const restored = tf.serialization.SerializationMap.getMap().classNameMap.LazyAdagrad![1](
      LazyAdagrad,
      cfg,
    ) as LazyAdagrad;
    expect(restored.getConfig()).toEqual(cfg);
    // The same state under new variable names: rename the entries to a second model's variables.
    const b = mk('cls-b');
    // Copies (not shared buffers: a shared buffer sends the kernel to its float32-ops fallback).
    tf.tidy(() => {
      b.E.assign(tf.tensor(a.E.dataSync().slice(), a.E.shape));
      b.b.assign(tf.tensor(a.b.dataSync().slice(), a.b.shape));
    });
    await restored.setWeights(
      weights.map((w) => ({ name: w.name.replace('cls-a', 'cls-b'), tensor: w.tensor })),
    );
    expect(restored.iterations).toBe(3);
    expect(restored.rowsTouched('cls-b/E')).toBe(opt.rowsTouched('cls-a/E'));
    for (let t = 3; t < 5; t++) {
      step(opt, 'cls-a', t);
      step(restored, 'cls-b', t);
    }
    expect(Array.from(b.E.dataSync())).toEqual(Array.from(a.E.dataSync()));
    expect(Array.from(b.b.dataSync())).toEqual(Array.from(a.b.dataSync()));
    opt.dispose();
    restored.dispose();
    tf.dispose([a.E, a.b, b.E, b.b]);
  });
});

describe('engine (segmented, gradient release) on a toy staged model', () => {
  it('row-lazy state grows with the rows seen; the engine measures the predicted bytes', async () => {
    const vocab = 64;
    const dim = 8;
    const model = toyStagedModel({ vocab, dim, depth: 2, seed: 3 });
    const plugin = lazyAdagrad({ lr: 0.05 });
    const engine = new TrainingEngine(model, { optimizer: plugin, mode: 'segmented' });
    const rows: number[] = [];
    const bytes: number[] = [];
    const seen = new Set<number>();
    for (let t = 1; t <= 4; t++) {
      // Tokens from the first 8·t ids: the embedding's touched rows grow step by step.
      const batch = toyBatch(vocab, 2, 4, 100 + t, 8 * t);
      for (const id of batch.inputs.dataSync()) seen.add(id);
      const res = await engine.trainStep(batch);
      tf.dispose([batch.inputs, batch.targets]);
      const n = plugin.rowsTouched(engine.stateOf('wte')!)!;
      rows.push(n);
      bytes.push(res.optimizerStateBytes);
      expect(n).toBe(seen.size);
      let predicted = 0;
      for (const [name, v] of model.variables) {
        const info = model.paramInfo(name);
        predicted += plugin.stateBytesFor(v.shape, info.role === 'embedding' ? n : undefined, {
          role: info.role,
        });
      }
      expect(res.optimizerStateBytes).toBe(predicted);
    }
    console.log(
      `[optim-lazy-adagrad] engine toy (V=${vocab}, d=${dim}): wte rows allocated per step [${rows.join(', ')}], optimizer state bytes [${bytes.join(', ')}] (dense Adagrad ${4 * [...model.variables.values()].reduce((a, v) => a + v.size, 0)})`,
    );
    expect(measuredUniqueBytes(Object.values(engine.stateOf('wte')!))).toBe(
      lazyRowStateBytes([vocab, dim], rows.at(-1)!),
    );
    engine.dispose();
    disposeModel(model);
  });
});
