import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../src/index.ts';
import { randomArray, relErr } from './helpers.ts';

async function on<T>(backend: 'cpu' | 'wasm', f: () => Promise<T>): Promise<T> {
  await selectBackend(backend);
  const start = tf.memory().numTensors;
  const out = await f();
  expect(tf.memory().numTensors, `${backend}: leaked tensors`).toBe(start);
  return out;
}

describe('wasm training kernels', () => {
  it('Sign on wasm is Math.sign, small magnitudes included (tfjs-wasm 4.22 returns 0 below ~1e-6)', async () => {
    await selectBackend('wasm');
    const x = new Float32Array([-9.153e-7, 1e-6, 1e-7, -1e-30, 1e-42, 0, -0.5, 3, Number.NaN]);
    const got = Array.from(await tf.sign(tf.tensor1d(x)).data());
    const want = Array.from(x, (v) => Math.sign(v));
    expect(got.slice(0, 8)).toEqual(want.slice(0, 8).map((v) => (Object.is(v, -0) ? -0 : v)));
    expect(Number.isNaN(got[8])).toBe(true);
  });

  it('UnsortedSegmentSum on wasm matches a float64 loop (ids out of range dropped)', async () => {
    const n = 9;
    const inner = [2, 3];
    const x = randomArray(n * 6, 3);
    const ids = [0, 4, 2, 4, -1, 0, 5, 1, 4]; // -1 and 5 are outside [0, 5)
    const got = await on('wasm', async () => {
      const r = tf.tidy(() =>
        tf.unsortedSegmentSum(tf.tensor(x, [n, ...inner]), tf.tensor1d(ids, 'int32'), 5),
      );
      expect(r.shape).toEqual([5, ...inner]);
      const data = Float32Array.from(await r.data());
      r.dispose();
      return data;
    });
    const ref = new Float64Array(5 * 6);
    ids.forEach((s, i) => {
      if (s >= 0 && s < 5) for (let j = 0; j < 6; j++) ref[s * 6 + j] += x[i * 6 + j];
    });
    expect(relErr(got, ref)).toBeLessThan(1e-6);
  });

  it("an embedding's gradient (gather) on wasm equals cpu and a float64 loop", async () => {
    const [V, C] = [13, 4];
    const table = randomArray(V * C, 5);
    const ids = [3, 1, 3, 12, 0, 3, 7];
    const r = randomArray(ids.length * C, 6);
    const grad = (backend: 'cpu' | 'wasm') =>
      on(backend, async () => {
        const g = tf.tidy(() => {
          const w = tf.tensor2d(table, [V, C]);
          const rows = tf.tensor2d(r, [ids.length, C]);
          return tf.grad((wt: tf.Tensor) => tf.sum(tf.mul(tf.gather(wt, tf.tensor1d(ids, 'int32')), rows)))(
            w,
          );
        });
        const data = Float32Array.from(await g.data());
        g.dispose();
        return data;
      });
    const cpu = await grad('cpu');
    const wasm = await grad('wasm');
    const ref = new Float64Array(V * C);
    ids.forEach((id, i) => {
      for (let j = 0; j < C; j++) ref[id * C + j] += r[i * C + j];
    });
    expect(relErr(wasm, ref)).toBeLessThan(1e-6);
    expect(relErr(wasm, cpu)).toBeLessThan(1e-6);
  });

  it('a GPT-style training step (embeddings, attention, layer norm, GELU, softmax CE, logSoftmax) has the same gradients on wasm and cpu', async () => {
    const [V, C, T, B, H] = [11, 8, 5, 2, 2];
    const init: Record<string, [Float32Array, number[]]> = {
      wte: [randomArray(V * C, 21), [V, C]],
      wpe: [randomArray(T * C, 22), [T, C]],
      wqkv: [randomArray(C * 3 * C, 23, 0.5), [C, 3 * C]],
      wo: [randomArray(C * C, 24, 0.5), [C, C]],
      gamma: [randomArray(C, 25), [C]],
    };
    const ids = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const targets = [2, 3, 4, 5, 6, 7, 8, 9, 10, 1];
    const step = (backend: 'cpu' | 'wasm') =>
      on(backend, async () => {
        const vars = tf.tidy(() =>
          Object.fromEntries(
            Object.entries(init).map(([k, [a, s]]) => [k, tf.variable(tf.tensor(a, s), true, k)]),
          ),
        );
        const ln = (x: tf.Tensor) =>
          tf.tidy(() => {
            const { mean, variance } = tf.moments(x, -1, true);
            return tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), vars.gamma);
          });
        const gelu = (x: tf.Tensor) =>
          tf.mul(
            tf.mul(x, 0.5),
            tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), 0.7978845608)), 1),
          );
        const loss = () =>
          tf.tidy(() => {
            const tok = tf.tensor1d(ids, 'int32');
            let x = tf.add(
              tf.reshape(tf.gather(vars.wte, tok), [B, T, C]),
              tf.gather(vars.wpe, tf.range(0, T, 1, 'int32')),
            );
            const qkv = tf.reshape(tf.matMul(tf.reshape(ln(x), [B * T, C]), vars.wqkv), [B, T, 3, H, C / H]);
            const [q, k, v] = tf.split(qkv, 3, 2).map((t) => tf.transpose(tf.squeeze(t, [2]), [0, 2, 1, 3]));
            const mask = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
            const att = tf.softmax(
              tf.add(
                tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(C / H)),
                tf.mul(tf.sub(1, mask), -1e9),
              ),
              -1,
            );
            const y = tf.matMul(
              tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B * T, C]),
              vars.wo,
            );
            x = tf.add(x, tf.reshape(gelu(y), [B, T, C]));
            const logits = tf.matMul(tf.reshape(ln(x), [B * T, C]), vars.wte, false, true);
            const oneHot = tf.oneHot(tf.tensor1d(targets, 'int32'), V);
            const ce = tf.losses.softmaxCrossEntropy(oneHot, logits);
            const nll = tf.div(tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), oneHot))), B * T);
            return tf.add(ce, nll) as tf.Scalar;
          });
        const { value, grads } = tf.variableGrads(loss);
        const out: Record<string, Float32Array> = { loss: Float32Array.from(await value.data()) };
        for (const [k, g] of Object.entries(grads)) out[k] = Float32Array.from(await g.data());
        tf.dispose([value, ...Object.values(grads), ...Object.values(vars)]);
        return out;
      });
    const cpu = await step('cpu');
    const wasm = await step('wasm');
    expect(Object.keys(wasm).sort()).toEqual(['gamma', 'loss', 'wo', 'wpe', 'wqkv', 'wte']);
    for (const k of Object.keys(cpu)) expect(relErr(wasm[k], cpu[k]), k).toBeLessThan(1e-4);
  });
});
