import { InputError, ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGPT, type GPTModel } from '../src/index.ts';
import { batchOf, MICRO, tokens } from './helpers.ts';
import { type F64Params, referenceLoss } from './reference.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('GPT stages', () => {
  let model: GPTModel;
  beforeAll(() => {
    model = createGPT(MICRO, { seed: 3 });
  });
  afterAll(() => model.dispose());

  it('has embed, block0…block{L-1}, head with the documented parameters', () => {
    expect(model.stages.map((s) => s.name)).toEqual(['embed', 'block0', 'block1', 'head']);
    expect(model.stages[0]!.params).toEqual(['wte', 'wpe']);
    expect(model.stages[1]!.params).toContain('h0.attn.wqkv');
    expect(model.stages[3]!.params).toEqual(['lnf.gamma', 'lnf.beta', 'wte']);
    for (const s of model.stages) for (const p of s.params) expect(model.variables.has(p)).toBe(true);
    expect(model.paramInfo('wte')).toEqual({ name: 'wte', shape: [11, 8], role: 'embedding' });
    expect(model.paramInfo('wpe').role).toBe('embedding');
    expect(model.paramInfo('h1.mlp.wfc')).toEqual({ name: 'h1.mlp.wfc', shape: [8, 32], role: 'matrix' });
    expect(model.paramInfo('h0.attn.bqkv').role).toBe('vector');
    expect(model.paramInfo('lnf.gamma').role).toBe('vector');
    expect(() => model.paramInfo('nope')).toThrow(InputError);
  });

  it('gives each stage the right shapes, and composing the stages equals model.loss', () => {
    const start = tf.memory().numTensors;
    const batch = batchOf(2, 5, MICRO.vocabSize);
    const params = model.paramRecord();
    const shapes: number[][] = [];
    let x: tf.Tensor = batch.inputs;
    const composed = tf.tidy(() => {
      for (const stage of model.stages) {
        x = stage.forward(x, params, batch);
        shapes.push(x.shape);
      }
      return x.dataSync()[0]!;
    });
    expect(shapes).toEqual([[2, 5, 8], [2, 5, 8], [2, 5, 8], []]);
    const loss = model.loss(batch);
    expect(loss.dataSync()[0]).toBeCloseTo(composed, 6);
    const logits = model.forwardLogits(batch.inputs);
    expect(logits.shape).toEqual([2, 5, 11]);
    tf.dispose([loss, logits, batch.inputs, batch.targets]);
    expect(tf.memory().numTensors).toBe(start);
  });

  it('is causal: changing tokens after t leaves logits at ≤ t unchanged', () => {
    const a = tokens(1, 8, 11, 0);
    const b = tf.tidy(() => tf.concat([a.slice([0, 0], [1, 4]), tf.fill([1, 4], 9, 'int32')], 1));
    const la = model.forwardLogits(a).arraySync() as number[][][];
    const lb = model.forwardLogits(b).arraySync() as number[][][];
    for (let t = 0; t < 4; t++)
      for (let v = 0; v < 11; v++) expect(lb[0]![t]![v]).toBeCloseTo(la[0]![t]![v]!, 6);
    const changed = la[0]![5]!.some((v, i) => Math.abs(v - lb[0]![5]![i]!) > 1e-6);
    expect(changed).toBe(true);
    tf.dispose([a, b]);
  });

  it('rejects tokens longer than the context and wrong dtypes', () => {
    const long = tokens(1, 9, 11);
    expect(() => model.forwardLogits(long)).toThrow(ShapeError);
    const f = tf.zeros([1, 4]);
    expect(() => model.forwardLogits(f)).toThrow(ShapeError);
    tf.dispose([long, f]);
  });
});

describe('GPT numerics', () => {
  it('starts near ln(vocab) and is deterministic per seed', () => {
    const cfg = { vocabSize: 64, nLayer: 2, nHead: 2, nEmbd: 32, blockSize: 16 };
    const m1 = createGPT(cfg, { seed: 42 });
    const m2 = createGPT(cfg, { seed: 42 });
    const m3 = createGPT(cfg, { seed: 43 });
    const batch = batchOf(4, 16, 64);
    const l1 = m1.loss(batch).dataSync()[0]!;
    // Tied head: the input token's own logit starts at ≈ 0.0143·D (LN-normalised wte row · wte row), so the loss
    // starts a little above ln(V).
    expect(Math.abs(l1 - Math.log(64))).toBeLessThan(0.15);
    console.log(`initial loss ${l1.toFixed(4)} vs ln(64) ${Math.log(64).toFixed(4)}`);
    for (const [name, v] of m1.variables) {
      expect(Array.from(v.dataSync())).toEqual(Array.from(m2.variables.get(name)!.dataSync()));
    }
    expect(Array.from(m1.variables.get('wte')!.dataSync())).not.toEqual(
      Array.from(m3.variables.get('wte')!.dataSync()),
    );
    // GPT-2 init: std 0.02, residual projections 0.02/√(2L), biases 0, gamma 1.
    const std = (t: tf.Tensor) => tf.tidy(() => Math.sqrt(tf.moments(t).variance.dataSync()[0]!));
    expect(std(m1.variables.get('h0.mlp.wfc')!)).toBeCloseTo(0.02, 2);
    expect(std(m1.variables.get('h0.attn.wo')!)).toBeCloseTo(0.01, 2);
    expect(Array.from(m1.variables.get('h1.ln2.gamma')!.dataSync()).every((v) => v === 1)).toBe(true);
    expect(Array.from(m1.variables.get('h1.attn.bqkv')!.dataSync()).every((v) => v === 0)).toBe(true);
    tf.dispose([batch.inputs, batch.targets]);
    for (const m of [m1, m2, m3]) m.dispose();
  });

  it('matches a float64 reference: loss, and gradients by central differences', () => {
    const model = createGPT(MICRO, { seed: 7 });
    // Move away from the symmetric init so every path carries signal.
    model.variables.forEach((v, name) => {
      tf.tidy(() => v.assign(v.add(tf.randomNormal(v.shape, 0, 0.3, 'float32', name.length * 101 + 5))));
    });
    const B = 2;
    const T = 5;
    const batch = batchOf(B, T, MICRO.vocabSize, 2);
    const toks = batch.inputs.arraySync() as number[][];
    const tgts = batch.targets.arraySync() as number[][];
    const p64: F64Params = {};
    for (const [name, v] of model.variables)
      p64[name] = { shape: v.shape, data: Float64Array.from(v.dataSync()) };

    // Gradients through the composed stages with PLAIN tensors as params (as the engine's segment recompute does):
    // a stage that captured variables would give no gradient here.
    const names = [...model.variables.keys()];
    const values = names.map((n) => model.variables.get(n)!.clone());
    const f = (...ps: tf.Tensor[]) => {
      const params = Object.fromEntries(names.map((n, i) => [n, ps[i]!]));
      let x: tf.Tensor = batch.inputs;
      for (const s of model.stages) x = s.forward(x, params, batch);
      return x;
    };
    const start = tf.memory().numTensors;
    const { value, grads } = tf.valueAndGrads(f)(values);
    const lossRef = referenceLoss(MICRO, p64, toks, tgts);
    expect(Math.abs(value.dataSync()[0]! - lossRef)).toBeLessThan(1e-5 * Math.max(1, lossRef));

    const checked = [
      'wte',
      'wpe',
      'h0.ln1.gamma',
      'h0.ln1.beta',
      'h0.attn.wqkv',
      'h0.attn.bqkv',
      'h0.attn.wo',
      'h1.mlp.wfc',
      'h1.mlp.bfc',
      'h1.mlp.wproj',
      'h1.ln2.beta',
      'lnf.gamma',
    ];
    let worst = 0;
    for (const name of checked) {
      const g = grads[names.indexOf(name)]!.dataSync();
      const data = p64[name]!.data;
      for (const idx of [0, Math.floor(data.length / 2) + 1, data.length - 1]) {
        const h = 1e-5;
        const orig = data[idx]!;
        data[idx] = orig + h;
        const lp = referenceLoss(MICRO, p64, toks, tgts);
        data[idx] = orig - h;
        const lm = referenceLoss(MICRO, p64, toks, tgts);
        data[idx] = orig;
        const fd = (lp - lm) / (2 * h);
        const err = Math.abs(fd - g[idx]!) / Math.max(1e-3, Math.abs(fd));
        worst = Math.max(worst, err);
        expect(err, `${name}[${idx}] fd ${fd} tfjs ${g[idx]}`).toBeLessThan(1e-2);
      }
    }
    console.log(
      `gradient check: worst relative error ${worst.toExponential(2)} over ${checked.length * 3} elements`,
    );
    tf.dispose([value, ...grads]);
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([...values, batch.inputs, batch.targets]);
    model.dispose();
  });

  it('leaks no tensor through a forward + backward, and disposes its variables', () => {
    const start = tf.memory().numTensors;
    const model = createGPT(MICRO, { seed: 1 });
    expect(tf.memory().numTensors).toBe(start + model.variables.size);
    const batch = batchOf(2, 8, MICRO.vocabSize);
    const mid = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => model.loss(batch), [...model.variables.values()]);
    expect(Object.keys(grads).length).toBe(model.variables.size);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(mid);
    tf.dispose([batch.inputs, batch.targets]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});
