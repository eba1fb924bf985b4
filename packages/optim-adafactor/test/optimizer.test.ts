import { InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Adafactor, adafactorFromReferenceHparams } from '../src/index.ts';
import { Adafactor64, goldenAdafactorRuns, HF_DEFAULTS, type RefHp, randn, relErr, rng } from './helpers.ts';
import { replayOptimizer, replayPlugin, TOL } from './replay.ts';

let start = 0;

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
  start = tf.memory().numTensors;
});

afterAll(() => {
  expect(tf.memory().numTensors).toBe(start);
});

/** Copies of tensors' values (cpu `dataSync` may hand back live buffers that change in place). */
const snapshot = (ts: tf.Tensor[]) => ts.map((t) => Float32Array.from(t.dataSync()));

function expectBitIdentical(a: Float32Array[], b: Float32Array[]): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++)
    expect(new Uint32Array(a[i]!.buffer)).toEqual(new Uint32Array(b[i]!.buffer));
}

describe('Adafactor drop-in: golden replay', () => {
  it('both runs match transformers Adafactor within 1e-5 at every recorded step, bit-identical to the plugin', async () => {
    const { runs } = goldenAdafactorRuns();
    for (const { run, index } of runs) {
      const plugin = adafactorFromReferenceHparams(run.hparams as never);
      const opt = new Adafactor(plugin.hparams);
      const before = tf.memory().numTensors;
      const r = await replayOptimizer(opt, index, `golden-dropin-${index}`);
      console.log(
        `[optim-adafactor] golden run ${index} (Adafactor class, cpu) worst ${r.worst.toExponential(2)} at ${r.worstAt}`,
      );
      expect(Object.keys(r.errors).length).toBe(run.after.length);
      expect(r.worst).toBeLessThanOrEqual(TOL);
      expect(opt.iterations).toBe(10);
      expect(opt.stateOf(`golden-dropin-${index}/T`)!.step).toBe(10);
      // State: W, T, E factored (2 each), b a vector (1), + exp_avg per parameter with beta1.
      expect(tf.memory().numTensors).toBe(before + 7 + (run.hparams.beta1 != null ? 4 : 0));
      opt.dispose();
      expect(tf.memory().numTensors).toBe(before);
      const viaPlugin = await replayPlugin(plugin, index, `golden-dropin-plugin-${index}`);
      const names = Object.keys(r.final);
      expectBitIdentical(
        names.map((n) => r.final[n]!),
        names.map((n) => viaPlugin.final[n]!),
      );
    }
  });
});

describe('Adafactor drop-in: plain tfjs', () => {
  it('is a tf.Optimizer; minimize drives a least-squares loss down (HF test_adafactor setting)', () => {
    // transformers tests/optimization: w = [0.1, −0.2, −0.1] fits [0.4, 0.2, −0.5], lr 1e-2, all switches off.
    const opt = new Adafactor({ lr: 1e-2, relativeStep: false, scaleParameter: false, warmupInit: false });
    expect(opt instanceof tf.Optimizer).toBe(true);
    const w = tf.tidy(() => tf.variable(tf.tensor([0.1, -0.2, -0.1]), true, 'hf/w'));
    const target = tf.tensor([0.4, 0.2, -0.5]);
    const loss = () => tf.losses.meanSquaredError(target, w) as tf.Scalar;
    const count0 = tf.memory().numTensors;
    for (let i = 0; i < 1000; i++) opt.minimize(loss, false, [w]);
    expect(tf.memory().numTensors).toBe(count0 + 1); // exp_avg_sq of w
    const got = w.dataSync();
    for (const [i, x] of [0.4, 0.2, -0.5].entries()) expect(Math.abs(got[i]! - x)).toBeLessThan(1e-2);
    opt.dispose();
    tf.dispose([w, target]);
  });

  it('keys state by variable name with per-variable steps (HF state["step"]): subsets and reordering match float64', () => {
    const options = { lr: 0.02, relativeStep: false, beta1: 0.9, weightDecay: 0.05 };
    const hp: RefHp = { ...HF_DEFAULTS, lr: 0.02, relative_step: false, beta1: 0.9, weight_decay: 0.05 };
    const opt = new Adafactor(options);
    const next = rng(99);
    const shapes: Record<string, number[]> = { 'order/a': [3], 'order/b': [2, 4], 'order/c': [2, 2, 3] };
    const vars: Record<string, tf.Variable> = {};
    const ref: Record<string, { p: Float64Array; r: Adafactor64 }> = {};
    for (const [n, s] of Object.entries(shapes)) {
      const p0 = randn(
        next,
        s.reduce((a, b) => a * b, 1),
      );
      vars[n] = tf.tidy(() => tf.variable(tf.tensor(p0.slice(), s), true, n));
      ref[n] = { p: Float64Array.from(p0), r: new Adafactor64(s, hp) };
    }
    // Step 1: a, b (map); 2: b only (array); 3: c first seen, reversed order; 4: a, with b's gradient null.
    const plan: string[][] = [
      ['order/a', 'order/b'],
      ['order/b'],
      ['order/c', 'order/b', 'order/a'],
      ['order/a'],
    ];
    let worst = 0;
    plan.forEach((names, i) => {
      const g: Record<string, Float32Array> = {};
      for (const n of names) g[n] = randn(next, vars[n]!.size);
      const tensors = names.map((n) => ({ name: n, tensor: tf.tensor(g[n]!, shapes[n]!) }));
      if (i === 0) opt.applyGradients(Object.fromEntries(tensors.map((e) => [e.name, e.tensor])));
      else if (i === 3) opt.applyGradients([{ name: 'order/b', tensor: null as never }, ...tensors]);
      else opt.applyGradients(tensors);
      tf.dispose(tensors.map((e) => e.tensor));
      for (const n of names) ref[n]!.r.update(ref[n]!.p, g[n]!);
      for (const n of Object.keys(shapes)) worst = Math.max(worst, relErr(vars[n]!.dataSync(), ref[n]!.p));
    });
    expect(worst).toBeLessThanOrEqual(TOL);
    expect(opt.iterations).toBe(4);
    expect(['order/a', 'order/b', 'order/c'].map((n) => opt.stateOf(n)!.step)).toEqual([3, 3, 1]);
    opt.dispose();
    tf.dispose(Object.values(vars));
  });

  for (const [label, options] of [
    ['relative step + scale', {}],
    ['lr, β1, wd', { lr: 0.03, relativeStep: false, beta1: 0.85, weightDecay: 0.1 }],
  ] as const) {
    it(`getWeights → new instance → setWeights: the next step equals the uninterrupted one bit for bit (${label})`, async () => {
      const next = rng(2024);
      const x = tf.tensor(randn(next, 16 * 5), [16, 5]);
      const y = tf.tensor(randn(next, 16 * 2), [16, 2]);
      const make = (w: Float32Array, b: Float32Array) =>
        tf.tidy(() => [
          tf.variable(tf.tensor(w.slice(), [5, 2]), true, 'resume/W'),
          tf.variable(tf.tensor(b.slice(), [2]), true, 'resume/b'),
        ]);
      const lossOf = (W: tf.Variable, b: tf.Variable) => () =>
        tf.losses.meanSquaredError(y, tf.add(tf.matMul(x, W), b)) as tf.Scalar;

      let [W, b] = make(randn(next, 10), randn(next, 2));
      const a = new Adafactor(options);
      for (let i = 0; i < 4; i++) a.minimize(lossOf(W!, b!), false, [W!, b!]);
      const params4 = snapshot([W!, b!]);
      const saved = await a.getWeights();
      const beta1 = 'beta1' in options;
      expect(saved.map((w) => w.name)).toEqual([
        'iter',
        'resume/W/exp_avg_sq_row',
        'resume/W/exp_avg_sq_col',
        ...(beta1 ? ['resume/W/exp_avg'] : []),
        'resume/W/step',
        'resume/b/exp_avg_sq',
        ...(beta1 ? ['resume/b/exp_avg'] : []),
        'resume/b/step',
      ]);
      const savedValues = saved.map((w) => ({
        name: w.name,
        shape: w.tensor.shape,
        dtype: w.tensor.dtype,
        values: w.tensor.dataSync().slice(),
      }));
      a.minimize(lossOf(W!, b!), false, [W!, b!]);
      const sa = a.stateOf('resume/W')!;
      const uninterrupted = snapshot([W!, b!, sa.exp_avg_sq_row!, sa.exp_avg_sq_col!]);
      a.dispose();
      tf.dispose([W!, b!]);

      [W, b] = make(params4[0]!, params4[1]!);
      const restored = savedValues.map((w) => ({
        name: w.name,
        tensor: tf.tensor(w.values, w.shape, w.dtype),
      }));
      const r = Adafactor.fromConfig(Adafactor, a.getConfig()) as Adafactor;
      // Shuffled order: matched by name.
      await r.setWeights([restored[0]!, ...restored.slice(1).reverse()]);
      tf.dispose(restored.map((w) => w.tensor));
      expect(r.iterations).toBe(4);
      expect(r.stateNames().sort()).toEqual(['resume/W', 'resume/b']);
      expect(r.stateOf('resume/W')!.step).toBe(4);
      expect(r.stateOf('resume/W')!.exp_avg_sq_row!.name).toBe('resume/W/exp_avg_sq_row');
      r.minimize(lossOf(W!, b!), false, [W!, b!]);
      const sr = r.stateOf('resume/W')!;
      expectBitIdentical(snapshot([W!, b!, sr.exp_avg_sq_row!, sr.exp_avg_sq_col!]), uninterrupted);
      r.dispose();
      tf.dispose([W!, b!, x, y]);
    });
  }

  it('setWeights rejects malformed input and leaves the state untouched', async () => {
    const opt = new Adafactor();
    const p = tf.tidy(() => tf.variable(tf.ones([2, 3]), true, 'bad-set/p'));
    const g = tf.ones([2, 3]);
    opt.applyGradients({ 'bad-set/p': g });
    const iter = tf.scalar(3, 'int32');
    const step = tf.scalar(3, 'int32');
    const row = tf.zeros([2]);
    const col = tf.zeros([3]);
    const col4 = tf.zeros([4, 1]);
    const set = (ws: [string, tf.Tensor][]) => opt.setWeights(ws.map(([name, tensor]) => ({ name, tensor })));
    await expect(set([['bad-set/p/exp_avg_sq_row', row]])).rejects.toThrow(/first entry must be 'iter'/);
    await expect(
      set([
        ['iter', iter],
        ['bad-set/p/x', row],
      ]),
    ).rejects.toThrow(/is not '<variable>/);
    await expect(
      set([
        ['iter', iter],
        ['bad-set/p/exp_avg_sq_row', row],
        ['bad-set/p/step', step],
      ]),
    ).rejects.toThrow(/both exp_avg_sq_row/);
    await expect(
      set([
        ['iter', iter],
        ['bad-set/p/exp_avg_sq_row', row],
        ['bad-set/p/exp_avg_sq_col', col4],
        ['bad-set/p/step', step],
      ]),
    ).rejects.toThrow(/do not belong to one parameter/);
    await expect(
      set([
        ['iter', iter],
        ['bad-set/p/exp_avg_sq_row', row],
        ['bad-set/p/exp_avg_sq_col', col],
      ]),
    ).rejects.toThrow(/step/);
    await expect(
      set([
        ['iter', iter],
        ['bad-set/p/exp_avg_sq_row', row],
        ['bad-set/p/exp_avg_sq_col', col],
        ['bad-set/p/exp_avg', row],
        ['bad-set/p/step', step],
      ]),
    ).rejects.toThrow(/beta1 = null/);
    expect(opt.iterations).toBe(1);
    expect(opt.stateOf('bad-set/p')!.step).toBe(1);
    expect(() => opt.applyGradients({ 'no-such-variable': g })).toThrow(InputError);
    // Restored state of the wrong shape for the variable is caught at the next update.
    const row3 = tf.zeros([3]);
    const col2 = tf.zeros([2]);
    await set([
      ['iter', iter],
      ['bad-set/p/exp_avg_sq_row', row3],
      ['bad-set/p/exp_avg_sq_col', col2],
      ['bad-set/p/step', step],
    ]);
    expect(() => opt.applyGradients({ 'bad-set/p': g })).toThrow(/expected float32\[2\]/);
    opt.dispose();
    tf.dispose([p, g, iter, step, row, col, col4, row3, col2]);
  });

  it('owns the tensors of getWeights it creates (iter, steps): no leak when dropped, no error when disposed', async () => {
    const before = tf.memory().numTensors;
    const opt = new Adafactor();
    const p = tf.tidy(() => tf.variable(tf.ones([2]), true, 'own/p'));
    const g = tf.ones([2]);
    opt.applyGradients({ 'own/p': g });
    const w1 = await opt.getWeights();
    await opt.getWeights();
    w1[0]!.tensor.dispose();
    expect(tf.memory().numTensors).toBe(before + 2 /* p, g */ + 1 /* state */ + 2 /* iter, step */);
    opt.dispose();
    tf.dispose([p, g]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('Adafactor drop-in: serialization and options', () => {
  it('className is a static getter; registered; getConfig/fromConfig round trip (camelCase and snake_case)', () => {
    const desc = Object.getOwnPropertyDescriptor(Adafactor, 'className');
    expect(typeof desc?.get).toBe('function');
    expect(Adafactor.className).toBe('Adafactor');
    const entry = tf.serialization.SerializationMap.getMap().classNameMap.Adafactor;
    expect(entry?.[0]).toBe(Adafactor);
    const a = new Adafactor({
      lr: 0.002,
      relativeStep: false,
      beta1: 0.8,
      clipThreshold: 2,
      decayRate: -0.5,
      eps1: 1e-20,
      eps2: 1e-2,
      weightDecay: 0.1,
    });
    expect(a.getClassName()).toBe('Adafactor');
    const config = a.getConfig();
    expect(config).toEqual({
      learningRate: 0.002,
      relativeStep: false,
      warmupInit: false,
      scaleParameter: true,
      beta1: 0.8,
      clipThreshold: 2,
      decayRate: -0.5,
      eps1: 1e-20,
      eps2: 1e-2,
      weightDecay: 0.1,
    });
    const [cls, fromConfig] = entry!;
    expect((fromConfig(cls, config) as Adafactor).getConfig()).toEqual(config);
    const snake = Adafactor.fromConfig(Adafactor, {
      learning_rate: 0.002,
      relative_step: false,
      warmup_init: false,
      scale_parameter: true,
      beta1: 0.8,
      clip_threshold: 2,
      decay_rate: -0.5,
      eps1: 1e-20,
      eps2: 1e-2,
      weight_decay: 0.1,
    });
    expect(snake.getConfig()).toEqual(config);
    const rel = new Adafactor();
    expect(rel.getConfig().learningRate).toBeNull();
    expect((Adafactor.fromConfig(Adafactor, rel.getConfig()) as Adafactor).hparams).toEqual(rel.hparams);
  });

  it('bad options → InputError; learningRate is settable without relativeStep, an InputError with it', () => {
    expect(() => new Adafactor({ lr: 1e-3 })).toThrow(/cannot be combined with relativeStep/);
    expect(() => new Adafactor({ relativeStep: false, lr: 1e-3, warmupInit: true })).toThrow(InputError);
    expect(() => new Adafactor({ beta1: 1 })).toThrow(InputError);
    expect(() => Adafactor.fromConfig(Adafactor, { learningRate: 0, relativeStep: false })).toThrow(
      InputError,
    );
    const rel = new Adafactor();
    expect(rel.learningRate).toBeNull();
    expect(() => {
      rel.learningRate = 0.1;
    }).toThrow(/learningRate cannot be set with relativeStep = true/);
    const ext = new Adafactor({ relativeStep: false, lr: 0.1 });
    expect(() => {
      ext.learningRate = 0;
    }).toThrow(InputError);
    ext.learningRate = 0.5;
    expect(ext.hparams.lr).toBe(0.5);
  });
});

describe('Adafactor drop-in: tfjs-layers', () => {
  function dataset() {
    const next = rng(42);
    const x = tf.tensor(randn(next, 64 * 4), [64, 4]);
    const y = tf.tidy(() => tf.add(tf.matMul(x, tf.tensor([[0.5], [-1], [2], [0.25]])), 0.3));
    return { x, y };
  }
  function model() {
    const m = tf.sequential();
    m.add(
      tf.layers.dense({
        units: 8,
        activation: 'tanh',
        inputShape: [4],
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
    );
    m.add(tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
    return m;
  }
  const evalLoss = (m: tf.LayersModel, x: tf.Tensor, y: tf.Tensor) =>
    tf.tidy(() => (m.evaluate(x, y, { batchSize: 64 }) as tf.Scalar).dataSync()[0]!);

  it('compile + fit trains a dense regression to a much lower loss; per-epoch tensor count is flat', async () => {
    const { x, y } = dataset();
    const m = model();
    const opt = new Adafactor({ relativeStep: false, scaleParameter: false, lr: 0.02 });
    m.compile({ optimizer: opt, loss: 'meanSquaredError' });
    const l0 = evalLoss(m, x, y);
    await m.fit(x, y, { epochs: 5, batchSize: 32, shuffle: false, verbose: 0 });
    const count = tf.memory().numTensors;
    await m.fit(x, y, { epochs: 55, batchSize: 32, shuffle: false, verbose: 0 });
    expect(tf.memory().numTensors).toBe(count);
    const l1 = evalLoss(m, x, y);
    console.log(`[optim-adafactor] tfjs-layers fit: loss ${l0.toFixed(4)} → ${l1.toFixed(4)} (120 steps)`);
    expect(l1).toBeLessThan(l0 * 0.1);
    expect(opt.iterations).toBe(120);
    expect(opt.stateNames().length).toBe(4);
    m.dispose();
    opt.dispose();
    tf.dispose([x, y]);
  });

  it('resume through getWeights/setWeights matches the uninterrupted fit step bit for bit', async () => {
    const { x, y } = dataset();
    const m = model();
    const options = { beta1: 0.9, weightDecay: 0.05 };
    const a = new Adafactor(options);
    m.compile({ optimizer: a, loss: 'meanSquaredError' });
    await m.fit(x, y, { epochs: 3, batchSize: 64, shuffle: false, verbose: 0 });
    const weights0 = m.getWeights().map((w) => ({ shape: w.shape, values: Float32Array.from(w.dataSync()) }));
    const state0 = (await a.getWeights()).map((w) => ({
      name: w.name,
      shape: w.tensor.shape,
      dtype: w.tensor.dtype,
      values: w.tensor.dataSync().slice(),
    }));
    await m.fit(x, y, { epochs: 1, batchSize: 64, shuffle: false, verbose: 0 });
    const names = a.stateNames();
    const uninterrupted = snapshot([...m.getWeights(), ...names.map((n) => a.stateOf(n)!.exp_avg!)]);

    const w0 = weights0.map((w) => tf.tensor(w.values, w.shape));
    m.setWeights(w0);
    tf.dispose(w0);
    const b = new Adafactor(options);
    const s0 = state0.map((w) => ({ name: w.name, tensor: tf.tensor(w.values, w.shape, w.dtype) }));
    await b.setWeights(s0);
    tf.dispose(s0.map((w) => w.tensor));
    m.compile({ optimizer: b, loss: 'meanSquaredError' });
    await m.fit(x, y, { epochs: 1, batchSize: 64, shuffle: false, verbose: 0 });
    expectBitIdentical(
      snapshot([...m.getWeights(), ...names.map((n) => b.stateOf(n)!.exp_avg!)]),
      uninterrupted,
    );
    expect(b.iterations).toBe(4);
    m.dispose();
    a.dispose();
    b.dispose();
    tf.dispose([x, y]);
  });

  it('model.save({includeOptimizer}) + loadLayersModel restores an Adafactor with its config and named state', async () => {
    const { x, y } = dataset();
    const m = model();
    const opt = new Adafactor({ relativeStep: false, lr: 0.01, beta1: 0.9 });
    m.compile({ optimizer: opt, loss: 'meanSquaredError' });
    await m.fit(x, y, { epochs: 2, batchSize: 64, shuffle: false, verbose: 0 });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await m.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
      { includeOptimizer: true },
    );
    expect((artifacts!.trainingConfig!.optimizer_config as { class_name: string }).class_name).toBe(
      'Adafactor',
    );
    const specs = artifacts!.weightSpecs!.filter((s) => s.group === 'optimizer').map((s) => s.name);
    expect(specs[0]).toBe('iter');
    expect(specs.filter((s) => s.endsWith('/step')).length).toBe(4);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    const lopt = loaded.optimizer as Adafactor;
    expect(lopt).toBeInstanceOf(Adafactor);
    expect(lopt.getConfig()).toEqual(opt.getConfig());
    expect(lopt.iterations).toBe(2);
    expect(lopt.stateNames()).toEqual(opt.stateNames());
    for (const n of opt.stateNames()) {
      expect(lopt.stateOf(n)!.step).toBe(2);
      expect(Array.from(lopt.stateOf(n)!.exp_avg!.dataSync())).toEqual(
        Array.from(opt.stateOf(n)!.exp_avg!.dataSync()),
      );
    }
    loaded.dispose();
    lopt.dispose();
    m.dispose();
    opt.dispose();
    tf.dispose([x, y]);
  });
});
