import { InputError, ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAME, type CameFactoredState, cameFromReferenceHparams } from '../src/index.ts';
import { came64Init, came64Step, goldenCameRuns, type Hp64, randn, relErr, rng } from './helpers.ts';
import { replayOptimizer, replayPlugin } from './replay.ts';

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

const stateTensors = (opt: CAME, names: string[]) =>
  names.flatMap((n) => Object.values(opt.stateOf(n)!) as tf.Variable[]);

describe('CAME drop-in: golden replay', () => {
  it('matches came_pytorch.CAME within 1e-5 at every recorded step, bit-identical to the plugin', async () => {
    for (const run of goldenCameRuns().runs) {
      const opt = new CAME(cameFromReferenceHparams(run.hparams).hparams);
      const before = tf.memory().numTensors;
      const r = await replayOptimizer(opt, run, 'golden-dropin');
      console.log(
        `[optim-came] golden replay (CAME class, cpu kernel) worst rel err ${r.worst.toExponential(3)} at ${r.worstAt}`,
      );
      expect(Object.keys(r.errors).length).toBe(run.after.length);
      expect(r.worst).toBeLessThanOrEqual(TOL);
      expect(opt.iterations).toBe(10);
      expect(opt.stateNames().sort()).toEqual(run.params_used.map((n) => `golden-dropin/${n}`).sort());
      // State: 5 variables per factored parameter (W, T, E), 2 for the vector b.
      expect(tf.memory().numTensors).toBe(before + 5 * 3 + 2);
      opt.dispose();
      expect(tf.memory().numTensors).toBe(before);
      const viaPlugin = await replayPlugin(
        cameFromReferenceHparams(run.hparams),
        run,
        'golden-dropin-plugin',
      );
      const names = Object.keys(r.final);
      expectBitIdentical(
        names.map((n) => r.final[n]!),
        names.map((n) => viaPlugin.final[n]!),
      );
    }
  });
});

describe('CAME drop-in: plain tfjs', () => {
  it('is a tf.Optimizer; minimize drives a least-squares loss down', () => {
    const opt = new CAME({ lr: 0.01 });
    expect(opt instanceof tf.Optimizer).toBe(true);
    const next = rng(7);
    const x = tf.tensor(Float32Array.from(randn(next, 32 * 3)), [32, 3]);
    const wTrue = tf.tensor([
      [1.5, 0.3],
      [-2, 1],
      [0.5, -0.7],
    ]);
    const y = tf.matMul(x, wTrue);
    const w = tf.tidy(() => tf.variable(tf.zeros([3, 2]), true, 'plain/w'));
    const loss = () => tf.losses.meanSquaredError(y, tf.matMul(x, w)) as tf.Scalar;
    const l0 = tf.tidy(() => loss().dataSync()[0]!);
    const afterFirst = tf.memory().numTensors;
    let last = l0;
    for (let i = 0; i < 150; i++) {
      const c = opt.minimize(loss, true, [w])!;
      last = c.dataSync()[0]!;
      c.dispose();
      if (i === 0) expect(tf.memory().numTensors).toBe(afterFirst + 5); // m, vRow, vCol, resRow, resCol of w
    }
    expect(tf.memory().numTensors).toBe(afterFirst + 5);
    console.log(
      `[optim-came] minimize least squares: loss ${l0.toFixed(4)} → ${last.toExponential(3)} (150 steps)`,
    );
    expect(last).toBeLessThan(l0 * 1e-2);
    opt.dispose();
    tf.dispose([x, wTrue, y, w]);
  });

  it('keys state by variable name: subsets and reordering between steps match a per-name float64 reference', () => {
    const hp: Hp64 = {
      lr: 0.02,
      beta1: 0.9,
      beta2: 0.99,
      beta3: 0.999,
      eps1: 1e-30,
      eps2: 1e-16,
      clipThreshold: 1,
      weightDecay: 0.05,
    };
    const opt = new CAME(hp);
    const next = rng(99);
    const shapes: Record<string, number[]> = { 'order/a': [3], 'order/b': [2, 3] };
    const vars: Record<string, tf.Variable> = {};
    const ref: Record<string, { p: Float64Array; s: ReturnType<typeof came64Init> }> = {};
    for (const [n, s] of Object.entries(shapes)) {
      const p0 = Float32Array.from(
        randn(
          next,
          s.reduce((a, b) => a * b, 1),
        ),
      );
      vars[n] = tf.tidy(() => tf.variable(tf.tensor(p0, s), true, n));
      ref[n] = { p: Float64Array.from(p0), s: came64Init(s) };
    }
    // Step 1: both (map); 2: b only (array); 3: reversed order (array); 4: a, with b's gradient null.
    const plan: string[][] = [['order/a', 'order/b'], ['order/b'], ['order/b', 'order/a'], ['order/a']];
    let worst = 0;
    plan.forEach((names, i) => {
      const t = i + 1;
      const g: Record<string, Float32Array> = {};
      for (const n of names) g[n] = Float32Array.from(randn(next, vars[n]!.size));
      const tensors = names.map((n) => ({ name: n, tensor: tf.tensor(g[n]!, shapes[n]!) }));
      if (t === 1) opt.applyGradients(Object.fromEntries(tensors.map((e) => [e.name, e.tensor])));
      else if (t === 4) opt.applyGradients([{ name: 'order/b', tensor: null as never }, ...tensors]);
      else opt.applyGradients(tensors);
      tf.dispose(tensors.map((e) => e.tensor));
      for (const n of names) came64Step(ref[n]!.p, g[n]!, ref[n]!.s, hp);
      for (const n of Object.keys(shapes)) worst = Math.max(worst, relErr(vars[n]!.dataSync(), ref[n]!.p));
    });
    expect(worst).toBeLessThanOrEqual(TOL);
    expect(opt.iterations).toBe(4);
    opt.dispose();
    tf.dispose(Object.values(vars));
  });

  it('getWeights → new instance → setWeights: the next step equals the uninterrupted one bit for bit', async () => {
    const next = rng(2024);
    const x = tf.tensor(Float32Array.from(randn(next, 16 * 5)), [16, 5]);
    const y = tf.tensor(Float32Array.from(randn(next, 16 * 2)), [16, 2]);
    const make = (w: Float32Array, b: Float32Array) =>
      tf.tidy(() => [
        tf.variable(tf.tensor(w, [5, 2]), true, 'resume/W'),
        tf.variable(tf.tensor(b, [2]), true, 'resume/b'),
      ]);
    const lossOf = (W: tf.Variable, b: tf.Variable) => () =>
      tf.losses.meanSquaredError(y, tf.add(tf.matMul(x, W), b)) as tf.Scalar;
    const options = {
      lr: 0.03,
      beta1: 0.85,
      beta2: 0.98,
      beta3: 0.995,
      clipThreshold: 0.8,
      weightDecay: 0.1,
    };
    const names = ['resume/W', 'resume/b'];

    // Uninterrupted run: 4 steps, checkpoint, 1 more step.
    let [W, b] = make(Float32Array.from(randn(next, 10)), Float32Array.from(randn(next, 2)));
    const a = new CAME(options);
    for (let i = 0; i < 4; i++) a.minimize(lossOf(W!, b!), false, [W!, b!]);
    const params4 = snapshot([W!, b!]);
    const saved = await a.getWeights();
    expect(saved.map((w) => w.name)).toEqual([
      'iter',
      'resume/W/m',
      'resume/W/vRow',
      'resume/W/vCol',
      'resume/W/resRow',
      'resume/W/resCol',
      'resume/b/m',
      'resume/b/v',
    ]);
    expect(saved[0]!.tensor.dtype).toBe('int32');
    const savedValues = saved.map((w) => ({
      name: w.name,
      shape: w.tensor.shape,
      values: w.tensor.dataSync().slice(),
    }));
    a.minimize(lossOf(W!, b!), false, [W!, b!]);
    const uninterrupted = snapshot([W!, b!, ...stateTensors(a, names)]);
    a.dispose();
    tf.dispose([W!, b!]);

    // Resumed run: fresh variables with the same names, a new optimizer, state restored from the checkpoint
    // (given in a shuffled order: matching is by name).
    [W, b] = make(params4[0]!, params4[1]!);
    const restoredTensors = savedValues.map((w) => ({
      name: w.name,
      tensor: tf.tensor(w.values, w.shape, w.name === 'iter' ? 'int32' : 'float32'),
    }));
    const shuffled = [restoredTensors[0]!, ...restoredTensors.slice(1).reverse()];
    const r = CAME.fromConfig(CAME, a.getConfig()) as CAME;
    await r.setWeights(shuffled);
    tf.dispose(restoredTensors.map((w) => w.tensor)); // the optimizer copied them
    expect(r.iterations).toBe(4);
    expect(r.stateNames().sort()).toEqual(names);
    expect((r.stateOf('resume/W') as CameFactoredState).vRow.name).toBe('resume/W/vRow');
    r.minimize(lossOf(W!, b!), false, [W!, b!]);
    const resumed = snapshot([W!, b!, ...stateTensors(r, names)]);
    expectBitIdentical(resumed, uninterrupted);
    expect(r.iterations).toBe(5);
    r.dispose();
    tf.dispose([W!, b!, x, y]);
  });

  it('owns the iter tensor of getWeights (no leak when the caller drops it, no error when it disposes it)', async () => {
    const before = tf.memory().numTensors;
    const opt = new CAME({ lr: 1e-3 });
    const w1 = await opt.getWeights();
    await opt.getWeights();
    w1[0]!.tensor.dispose();
    expect(tf.memory().numTensors).toBe(before + 1);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('setWeights rejects malformed input and leaves the state untouched', async () => {
    const opt = new CAME({ lr: 1e-3 });
    const p = tf.tidy(() => tf.variable(tf.ones([2, 3]), true, 'bad-set/p'));
    const g = tf.ones([2, 3]);
    opt.applyGradients({ 'bad-set/p': g });
    const iter = tf.scalar(3, 'int32');
    const m = tf.zeros([2, 3]);
    const row = tf.zeros([2]);
    const col = tf.zeros([3]);
    const bad = tf.zeros([5]);
    const full = (over: Record<string, tf.Tensor> = {}) =>
      Object.entries({ m, vRow: row, vCol: col, resRow: row, resCol: col, ...over }).map(([k, t]) => ({
        name: `bad-set/p/${k}`,
        tensor: t,
      }));
    await expect(opt.setWeights([{ name: 'bad-set/p/m', tensor: m }])).rejects.toThrow(InputError);
    await expect(
      opt.setWeights([
        { name: 'iter', tensor: iter },
        { name: 'bad-set/p/x', tensor: m },
      ]),
    ).rejects.toThrow(/not '<variable>\/<key>'/);
    await expect(opt.setWeights([{ name: 'iter', tensor: iter }, ...full().slice(0, 3)])).rejects.toThrow(
      /needs exactly m, vRow, vCol, resRow, resCol/,
    );
    await expect(opt.setWeights([{ name: 'iter', tensor: iter }, ...full({ vCol: bad })])).rejects.toThrow(
      ShapeError,
    );
    await expect(
      opt.setWeights([{ name: 'iter', tensor: iter }, ...full(), { name: 'bad-set/p/m', tensor: m }]),
    ).rejects.toThrow(/appears twice/);
    expect(opt.iterations).toBe(1);
    expect(opt.stateNames()).toEqual(['bad-set/p']);
    expect(() => opt.applyGradients({ 'no-such-variable': g })).toThrow(InputError);
    // A complete, consistent set is accepted.
    await opt.setWeights([{ name: 'iter', tensor: iter }, ...full()]);
    expect(opt.iterations).toBe(3);
    opt.dispose();
    tf.dispose([p, g, iter, m, row, col, bad]);
  });
});

describe('CAME drop-in: serialization', () => {
  it('className is a static getter; registered with tf.serialization; getConfig/fromConfig round trip', () => {
    const desc = Object.getOwnPropertyDescriptor(CAME, 'className');
    expect(typeof desc?.get).toBe('function');
    expect(CAME.className).toBe('CAME');
    const entry = tf.serialization.SerializationMap.getMap().classNameMap.CAME;
    expect(entry?.[0]).toBe(CAME);
    const options = {
      lr: 0.002,
      beta1: 0.8,
      beta2: 0.95,
      beta3: 0.995,
      eps1: 1e-20,
      eps2: 1e-12,
      clipThreshold: 0.5,
      weightDecay: 0.1,
    };
    const a = new CAME(options);
    expect(a.getClassName()).toBe('CAME');
    const config = a.getConfig();
    const { lr, ...others } = options;
    expect(config).toEqual({ learningRate: lr, ...others });
    const [cls, fromConfig] = entry!;
    const b = fromConfig(cls, config) as CAME;
    expect(b).toBeInstanceOf(CAME);
    expect(b.getConfig()).toEqual(config);
    const snake = CAME.fromConfig(CAME, {
      learning_rate: 0.002,
      beta_1: 0.8,
      beta_2: 0.95,
      beta_3: 0.995,
      eps1: 1e-20,
      eps2: 1e-12,
      clip_threshold: 0.5,
      weight_decay: 0.1,
    });
    expect(snake.getConfig()).toEqual(config);
    // Missing fields take the defaults; a missing learning rate is an error (no default lr).
    expect((CAME.fromConfig(CAME, { learningRate: 0.1 }) as CAME).beta3).toBe(0.9999);
    expect(() => CAME.fromConfig(CAME, {})).toThrow(/lr is required/);
  });

  it('bad options → InputError (constructor, fromConfig, learningRate setter)', () => {
    expect(() => new CAME({ lr: -1 })).toThrow(/CAME: lr = -1 is invalid/);
    expect(() => new CAME({} as never)).toThrow(/lr is required/);
    expect(() => new CAME(undefined as never)).toThrow(InputError);
    expect(() => new CAME({ lr: 1, beta3: 1 })).toThrow(InputError);
    expect(() => new CAME({ lr: 1, eps2: 0 })).toThrow(InputError);
    expect(() => new CAME({ lr: 1, weightDecay: Number.NaN })).toThrow(InputError);
    expect(() => CAME.fromConfig(CAME, { learningRate: 0 })).toThrow(InputError);
    const opt = new CAME({ lr: 1 });
    expect(() => {
      opt.learningRate = 0;
    }).toThrow(InputError);
    opt.learningRate = 0.5;
    expect(opt.hparams.lr).toBe(0.5);
  });
});

describe('CAME drop-in: tfjs-layers', () => {
  function dataset() {
    const next = rng(42);
    const x = tf.tensor(Float32Array.from(randn(next, 64 * 4)), [64, 4]);
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
    const opt = new CAME({ lr: 0.005 });
    m.compile({ optimizer: opt, loss: 'meanSquaredError' });
    const l0 = evalLoss(m, x, y);
    await m.fit(x, y, { epochs: 5, batchSize: 32, shuffle: false, verbose: 0 });
    const count = tf.memory().numTensors;
    await m.fit(x, y, { epochs: 55, batchSize: 32, shuffle: false, verbose: 0 });
    expect(tf.memory().numTensors).toBe(count);
    const l1 = evalLoss(m, x, y);
    console.log(`[optim-came] tfjs-layers fit: loss ${l0.toFixed(4)} → ${l1.toFixed(4)} (120 steps)`);
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
    const options = { lr: 0.01, weightDecay: 0.05 };
    const a = new CAME(options);
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
    const uninterrupted = snapshot([...m.getWeights(), ...stateTensors(a, names)]);

    // Back to the checkpoint: model weights and a new optimizer with the restored state.
    const w0 = weights0.map((w) => tf.tensor(w.values, w.shape));
    m.setWeights(w0);
    tf.dispose(w0);
    const b = new CAME(options);
    const s0 = state0.map((w) => ({ name: w.name, tensor: tf.tensor(w.values, w.shape, w.dtype) }));
    await b.setWeights(s0);
    tf.dispose(s0.map((w) => w.tensor));
    m.compile({ optimizer: b, loss: 'meanSquaredError' });
    await m.fit(x, y, { epochs: 1, batchSize: 64, shuffle: false, verbose: 0 });
    const resumed = snapshot([...m.getWeights(), ...stateTensors(b, names)]);
    expectBitIdentical(resumed, uninterrupted);
    expect(b.iterations).toBe(4);
    m.dispose();
    a.dispose();
    b.dispose();
    tf.dispose([x, y]);
  });

  it('model.save({includeOptimizer}) + loadLayersModel restores a CAME with its config and named state', async () => {
    const { x, y } = dataset();
    const m = model();
    const opt = new CAME({ lr: 0.01, beta3: 0.999, weightDecay: 0.02 });
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
    expect((tc.optimizer_config as { class_name: string }).class_name).toBe('CAME');
    const optimizerSpecs = artifacts!.weightSpecs!.filter((s) => s.group === 'optimizer').map((s) => s.name);
    expect(optimizerSpecs).toEqual((await opt.getWeights()).map((w) => w.name));

    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    const lopt = loaded.optimizer as CAME;
    expect(lopt).toBeInstanceOf(CAME);
    expect(lopt.getConfig()).toEqual(opt.getConfig());
    expect(lopt.iterations).toBe(2);
    // State keeps the saved (original) variable names.
    expect(lopt.stateNames()).toEqual(opt.stateNames());
    for (const n of opt.stateNames()) {
      const a = opt.stateOf(n)! as unknown as Record<string, tf.Tensor>;
      const b = lopt.stateOf(n)! as unknown as Record<string, tf.Tensor>;
      expect(Object.keys(b)).toEqual(Object.keys(a));
      for (const k of Object.keys(a))
        expect(Array.from(b[k]!.dataSync())).toEqual(Array.from(a[k]!.dataSync()));
    }
    loaded.dispose();
    lopt.dispose();
    m.dispose();
    opt.dispose();
    tf.dispose([x, y]);
  });
});
