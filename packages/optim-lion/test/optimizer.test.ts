import { InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lion, lionFromReferenceHparams } from '../src/index.ts';
import { goldenLionRuns, type LionHp, lionStep64, randn, rng, signAwareErr, takenSigns } from './helpers.ts';
import { expectGolden, replayLion, summary } from './replay.ts';

const TOL = 1e-5;
let start = 0;

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
  start = tf.memory().numTensors;
});

afterAll(() => {
  expect(tf.memory().numTensors).toBe(start);
});

/** Copies of a list of tensors' values (cpu `dataSync` may hand back live buffers that change in place). */
const snapshot = (ts: tf.Tensor[]) => ts.map((t) => Float32Array.from(t.dataSync()));

function expectBitIdentical(a: Float32Array[], b: Float32Array[]): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    expect(new Uint32Array(a[i]!.buffer)).toEqual(new Uint32Array(b[i]!.buffer));
  }
}

const fromRun = (h: Record<string, number>) =>
  new Lion({ lr: h.lr, beta1: h.beta1, beta2: h.beta2, weightDecay: h.weight_decay });

describe('the sign-aware comparison counts differing elements (it does not hide them)', () => {
  it('an element moved the other way is counted once, with an error of 2·lr; the rest stay within tolerance', () => {
    const lr = 1e-3;
    const ref = [0.5, -0.25, 1, 0.125];
    const p = Float32Array.from([0.5, -0.25 + 2 * lr, 1 + 1e-8, 0.125]);
    const e = signAwareErr(p, ref, lr);
    expect(e.differing).toBe(1);
    expect(e.differingInLr[0]).toBeCloseTo(2, 3);
    expect(e.relErr).toBeLessThan(1e-7);
    const hp: LionHp = { lr, beta1: 0.9, beta2: 0.99, weightDecay: 0.1 };
    const decay = 1 - lr * 0.1;
    const after = Float32Array.from([0.5 * decay - lr, -0.25 * decay + lr, 1 * decay, 0.125 * decay - lr]);
    expect(Array.from(takenSigns([0.5, -0.25, 1, 0.125], after, hp))).toEqual([1, -1, 0, 1]);
  });
});

describe('Lion drop-in: golden replay', () => {
  it('every golden Lion run through applyGradients: same bar as the plugin, bit-identical to it', async () => {
    const { runs } = goldenLionRuns();
    for (const { run, index } of runs) {
      const opt = fromRun(run.hparams);
      const before = tf.memory().numTensors;
      const r = await replayLion({ kind: 'optimizer', optimizer: opt }, `golden-dropin-${index}`, index);
      console.log(summary('Lion class, cpu kernel', r));
      expectGolden(r, TOL, expect);
      expect(opt.iterations).toBe(10);
      expect(opt.stateNames().sort()).toEqual(['E', 'T', 'W', 'b'].map((n) => `golden-dropin-${index}/${n}`));
      expect(tf.memory().numTensors).toBe(before + 4); // one momentum per parameter, nothing else
      opt.dispose();
      expect(tf.memory().numTensors).toBe(before);
      const viaPlugin = await replayLion(
        { kind: 'plugin', plugin: lionFromReferenceHparams(run.hparams as never) },
        `golden-dropin-plugin-${index}`,
        index,
      );
      const names = Object.keys(r.final);
      expectBitIdentical(
        names.map((n) => r.final[n]!),
        names.map((n) => viaPlugin.final[n]!),
      );
    }
  });
});

describe('Lion drop-in: plain tfjs', () => {
  it('is a tf.Optimizer; minimize drives a least-squares loss down', () => {
    const opt = new Lion({ lr: 0.05 });
    expect(opt instanceof tf.Optimizer).toBe(true);
    const next = rng(7);
    const x = tf.tensor(randn(next, 32 * 3), [32, 3]);
    const wTrue = tf.tensor([[1.5], [-2], [0.5]]);
    const y = tf.matMul(x, wTrue);
    const w = tf.tidy(() => tf.variable(tf.zeros([3, 1]), true, 'plain/w'));
    const loss = () => tf.losses.meanSquaredError(y, tf.matMul(x, w)) as tf.Scalar;
    const l0 = tf.tidy(() => loss().dataSync()[0]!);
    const afterFirst = tf.memory().numTensors;
    let last = l0;
    for (let i = 0; i < 300; i++) {
      const c = opt.minimize(loss, true, [w])!;
      last = c.dataSync()[0]!;
      c.dispose();
      if (i === 0) expect(tf.memory().numTensors).toBe(afterFirst + 1); // m of w
      // Sign updates hover ±lr around the optimum: anneal.
      if (i === 150) opt.learningRate = 0.005;
      if (i === 250) opt.learningRate = 0.0005;
    }
    expect(tf.memory().numTensors).toBe(afterFirst + 1);
    expect(last).toBeLessThan(l0 * 1e-3);
    opt.dispose();
    tf.dispose([x, wTrue, y, w]);
  });

  it('keys state by variable name: subsets and reordering between steps match a per-name float64 reference', () => {
    const hp: LionHp = { lr: 0.02, beta1: 0.9, beta2: 0.99, weightDecay: 0.5 };
    const opt = new Lion(hp);
    const next = rng(99);
    const shapes: Record<string, number[]> = { 'order/a': [3], 'order/b': [2, 2] };
    const vars: Record<string, tf.Variable> = {};
    const ref: Record<string, { p: Float64Array; m: Float64Array }> = {};
    for (const [n, s] of Object.entries(shapes)) {
      const p0 = randn(
        next,
        s.reduce((a, b) => a * b, 1),
      );
      vars[n] = tf.tidy(() => tf.variable(tf.tensor(p0, s), true, n));
      ref[n] = { p: Float64Array.from(p0), m: new Float64Array(p0.length) };
    }
    // Step 1: both (map); 2: b only (array); 3: reversed order (array); 4: a, with b's gradient null.
    const plan: string[][] = [['order/a', 'order/b'], ['order/b'], ['order/b', 'order/a'], ['order/a']];
    let worst = 0;
    let differing = 0;
    plan.forEach((names, i) => {
      const t = i + 1;
      const g: Record<string, Float32Array> = {};
      for (const n of names) g[n] = randn(next, vars[n]!.size);
      const tensors = names.map((n) => ({ name: n, tensor: tf.tensor(g[n]!, shapes[n]!) }));
      if (t === 1) opt.applyGradients(Object.fromEntries(tensors.map((e) => [e.name, e.tensor])));
      else if (t === 4) opt.applyGradients([{ name: 'order/b', tensor: null as never }, ...tensors]);
      else opt.applyGradients(tensors);
      tf.dispose(tensors.map((e) => e.tensor));
      for (const n of names) lionStep64(ref[n]!.p, g[n]!, ref[n]!.m, hp);
      for (const n of Object.keys(shapes)) {
        const e = signAwareErr(vars[n]!.dataSync(), ref[n]!.p, hp.lr);
        worst = Math.max(worst, e.relErr);
        differing += e.differing;
      }
    });
    expect(differing).toBe(0);
    expect(worst).toBeLessThanOrEqual(TOL);
    expect(opt.iterations).toBe(4);
    opt.dispose();
    tf.dispose(Object.values(vars));
  });

  it('getWeights → new instance → setWeights: the next step equals the uninterrupted one bit for bit', async () => {
    const next = rng(2024);
    const x = tf.tensor(randn(next, 16 * 5), [16, 5]);
    const y = tf.tensor(randn(next, 16 * 2), [16, 2]);
    const make = (w: Float32Array, b: Float32Array) =>
      tf.tidy(() => [
        tf.variable(tf.tensor(w, [5, 2]), true, 'resume/W'),
        tf.variable(tf.tensor(b, [2]), true, 'resume/b'),
      ]);
    const lossOf = (W: tf.Variable, b: tf.Variable) => () =>
      tf.losses.meanSquaredError(y, tf.add(tf.matMul(x, W), b)) as tf.Scalar;
    const options = { lr: 0.01, beta1: 0.95, beta2: 0.98, weightDecay: 0.3, decoupledWeightDecay: true };

    // Uninterrupted run: 4 steps, a scheduled lr, checkpoint, 1 more step.
    let [W, b] = make(randn(next, 10), randn(next, 2));
    const a = new Lion(options);
    for (let i = 0; i < 4; i++) a.minimize(lossOf(W!, b!), false, [W!, b!]);
    a.learningRate = 0.004;
    const params4 = snapshot([W!, b!]);
    const saved = await a.getWeights();
    expect(saved.map((w) => w.name)).toEqual(['iter', 'resume/W/m', 'resume/b/m']);
    expect(saved[0]!.tensor.dtype).toBe('int32');
    const savedValues = saved.map((w) => ({
      name: w.name,
      shape: w.tensor.shape,
      values: w.tensor.dataSync().slice(),
    }));
    a.minimize(lossOf(W!, b!), false, [W!, b!]);
    const uninterrupted = snapshot([W!, b!, a.stateOf('resume/W')!.m, a.stateOf('resume/b')!.m]);
    const config = a.getConfig();
    a.dispose();
    tf.dispose([W!, b!]);

    // Resumed run: fresh variables with the same names, a new optimizer from the config, state restored.
    [W, b] = make(params4[0]!, params4[1]!);
    const restoredTensors = savedValues.map((w) => ({
      name: w.name,
      tensor: tf.tensor(w.values, w.shape, w.name === 'iter' ? 'int32' : 'float32'),
    }));
    const r = Lion.fromConfig(Lion, config) as Lion;
    expect(r.learningRate).toBe(0.004);
    expect(r.initialLearningRate).toBe(0.01);
    await r.setWeights(restoredTensors);
    tf.dispose(restoredTensors.map((w) => w.tensor)); // the optimizer copied them
    expect(r.iterations).toBe(4);
    expect(r.stateNames()).toEqual(['resume/W', 'resume/b']);
    expect(r.stateOf('resume/W')!.m.name).toBe('resume/W/m');
    r.minimize(lossOf(W!, b!), false, [W!, b!]);
    const resumed = snapshot([W!, b!, r.stateOf('resume/W')!.m, r.stateOf('resume/b')!.m]);
    expectBitIdentical(resumed, uninterrupted);
    expect(r.iterations).toBe(5);
    r.dispose();
    tf.dispose([W!, b!, x, y]);
  });

  it('owns the iter tensor of getWeights (no leak when the caller drops it, no error when it disposes it)', async () => {
    const before = tf.memory().numTensors;
    const opt = new Lion();
    const w1 = await opt.getWeights();
    await opt.getWeights();
    w1[0]!.tensor.dispose();
    expect(tf.memory().numTensors).toBe(before + 1);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('setWeights rejects malformed input and leaves the state untouched', async () => {
    const opt = new Lion();
    const p = tf.tidy(() => tf.variable(tf.ones([2]), true, 'bad-set/p'));
    const g = tf.ones([2]);
    opt.applyGradients({ 'bad-set/p': g });
    const iter = tf.scalar(3, 'int32');
    const m = tf.zeros([2]);
    const m3 = tf.zeros([3]);
    const mi = tf.zeros([2], 'int32');
    await expect(opt.setWeights([{ name: 'bad-set/p/m', tensor: m }])).rejects.toThrow(InputError);
    await expect(
      opt.setWeights([
        { name: 'iter', tensor: iter },
        { name: 'bad-set/p/v', tensor: m },
      ]),
    ).rejects.toThrow(/not '<variable>\/m'/);
    await expect(
      opt.setWeights([
        { name: 'iter', tensor: iter },
        { name: 'bad-set/p/m', tensor: m },
        { name: 'bad-set/p/m', tensor: m },
      ]),
    ).rejects.toThrow(/twice/);
    await expect(
      opt.setWeights([
        { name: 'iter', tensor: iter },
        { name: 'bad-set/p/m', tensor: m3 },
      ]),
    ).rejects.toThrow(/shape/);
    await expect(
      opt.setWeights([
        { name: 'iter', tensor: iter },
        { name: 'bad-set/p/m', tensor: mi },
      ]),
    ).rejects.toThrow(/dtype int32/);
    expect(opt.iterations).toBe(1);
    expect(opt.stateNames()).toEqual(['bad-set/p']);
    expect(() => opt.applyGradients({ 'no-such-variable': g })).toThrow(InputError);
    opt.dispose();
    tf.dispose([p, g, iter, m, m3, mi]);
  });
});

describe('Lion drop-in: serialization', () => {
  it('className is a static getter; registered with tf.serialization; getConfig/fromConfig round trip', () => {
    const desc = Object.getOwnPropertyDescriptor(Lion, 'className');
    expect(typeof desc?.get).toBe('function');
    expect(Lion.className).toBe('Lion');
    const entry = tf.serialization.SerializationMap.getMap().classNameMap.Lion;
    expect(entry?.[0]).toBe(Lion);
    const a = new Lion({ lr: 3e-4, beta1: 0.95, beta2: 0.98, weightDecay: 0.1 });
    expect(a.getClassName()).toBe('Lion');
    const config = a.getConfig();
    expect(config).toEqual({
      learningRate: 3e-4,
      beta1: 0.95,
      beta2: 0.98,
      weightDecay: 0.1,
      decoupledWeightDecay: false,
      initialLearningRate: 3e-4,
    });
    const [cls, fromConfig] = entry!;
    const b = fromConfig(cls, config) as Lion;
    expect(b).toBeInstanceOf(Lion);
    expect(b.getConfig()).toEqual(config);
    const snake = Lion.fromConfig(Lion, {
      learning_rate: 3e-4,
      beta_1: 0.95,
      beta_2: 0.98,
      weight_decay: 0.1,
      decoupled_weight_decay: false,
    });
    expect(snake.getConfig()).toEqual(config);
  });

  it('bad options → InputError (constructor, fromConfig, learningRate setter)', () => {
    expect(() => new Lion({ lr: -1 })).toThrow(/Lion: lr = -1 is invalid/);
    expect(() => new Lion({ beta2: 1.5 })).toThrow(InputError);
    expect(() => new Lion({ weightDecay: Number.NaN })).toThrow(InputError);
    expect(() => new Lion({ impl: 'gpu' as never })).toThrow(InputError);
    expect(() => Lion.fromConfig(Lion, { learningRate: 0 })).toThrow(InputError);
    const opt = new Lion();
    expect(() => {
      opt.learningRate = 0;
    }).toThrow(InputError);
    opt.learningRate = 0.5;
    expect(opt.hparams.lr).toBe(0.5);
  });
});

describe('Lion drop-in: tfjs-layers', () => {
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
    const opt = new Lion({ lr: 0.02, weightDecay: 0.01 });
    m.compile({ optimizer: opt, loss: 'meanSquaredError' });
    const l0 = evalLoss(m, x, y);
    await m.fit(x, y, { epochs: 5, batchSize: 32, shuffle: false, verbose: 0 });
    const count = tf.memory().numTensors;
    await m.fit(x, y, { epochs: 55, batchSize: 32, shuffle: false, verbose: 0 });
    expect(tf.memory().numTensors).toBe(count);
    const l1 = evalLoss(m, x, y);
    console.log(`[optim-lion] tfjs-layers fit: loss ${l0.toFixed(4)} → ${l1.toFixed(4)} (120 steps)`);
    expect(l1).toBeLessThan(l0 * 0.1);
    expect(opt.iterations).toBe(120);
    expect(opt.stateNames().length).toBe(4); // 2 kernels + 2 biases
    m.dispose();
    opt.dispose();
    tf.dispose([x, y]);
  });

  it('resume through getWeights/setWeights matches the uninterrupted fit step bit for bit', async () => {
    const { x, y } = dataset();
    const m = model();
    const options = { lr: 0.003, weightDecay: 0.05 };
    const a = new Lion(options);
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
    const uninterrupted = snapshot([...m.getWeights(), ...names.map((n) => a.stateOf(n)!.m)]);

    const w0 = weights0.map((w) => tf.tensor(w.values, w.shape));
    m.setWeights(w0);
    tf.dispose(w0);
    const b = new Lion(options);
    const s0 = state0.map((w) => ({ name: w.name, tensor: tf.tensor(w.values, w.shape, w.dtype) }));
    await b.setWeights(s0);
    tf.dispose(s0.map((w) => w.tensor));
    m.compile({ optimizer: b, loss: 'meanSquaredError' });
    await m.fit(x, y, { epochs: 1, batchSize: 64, shuffle: false, verbose: 0 });
    const resumed = snapshot([...m.getWeights(), ...names.map((n) => b.stateOf(n)!.m)]);
    expectBitIdentical(resumed, uninterrupted);
    expect(b.iterations).toBe(4);
    m.dispose();
    a.dispose();
    b.dispose();
    tf.dispose([x, y]);
  });

  it('model.save({includeOptimizer}) + loadLayersModel restores a Lion with its config and named state', async () => {
    const { x, y } = dataset();
    const m = model();
    const opt = new Lion({ lr: 0.002, beta2: 0.98, weightDecay: 0.2 });
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
    const tc = artifacts!.trainingConfig!;
    expect((tc.optimizer_config as { class_name: string }).class_name).toBe('Lion');
    const optimizerSpecs = artifacts!.weightSpecs!.filter((s) => s.group === 'optimizer').map((s) => s.name);
    expect(optimizerSpecs).toEqual(['iter', ...opt.stateNames().map((n) => `${n}/m`)]);

    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    const lopt = loaded.optimizer as Lion;
    expect(lopt).toBeInstanceOf(Lion);
    expect(lopt.getConfig()).toEqual(opt.getConfig());
    expect(lopt.iterations).toBe(2);
    expect(lopt.stateNames()).toEqual(opt.stateNames());
    for (const n of opt.stateNames()) {
      expect(Array.from(lopt.stateOf(n)!.m.dataSync())).toEqual(Array.from(opt.stateOf(n)!.m.dataSync()));
    }
    loaded.dispose();
    lopt.dispose();
    m.dispose();
    opt.dispose();
    tf.dispose([x, y]);
  });
});
