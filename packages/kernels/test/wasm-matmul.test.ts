import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../src/index.ts';
import { randomArray, relErr } from './helpers.ts';

// The wasm matMul wrappers transpose flagged operands explicitly (XNNPACK only runs untransposed products).
// Reference: the same products on the cpu backend.
async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor): Promise<Float32Array> {
  await selectBackend(backend);
  const t = f();
  const out = (await t.data()) as Float32Array;
  t.dispose();
  return out;
}

describe('wasm matMul with transposed operands', () => {
  const cases: Array<[string, number[], number[], boolean, boolean]> = [
    ['2-D, transposeA', [64, 17], [64, 9], true, false],
    ['2-D, transposeB', [17, 64], [9, 64], false, true],
    ['2-D, both', [64, 17], [9, 64], true, true],
    ['batched, transposeA', [3, 5, 32, 7], [3, 5, 32, 6], true, false],
    ['batched, transposeB', [4, 8, 16], [4, 8, 16], false, true],
  ];
  it.each(cases)('%s equals the cpu product', async (_label, sa, sb, ta, tb) => {
    const a = randomArray(
      sa.reduce((x, y) => x * y),
      1,
    );
    const b = randomArray(
      sb.reduce((x, y) => x * y),
      2,
    );
    const f = () => tf.matMul(tf.tensor(a, sa), tf.tensor(b, sb), ta, tb);
    const want = await on('cpu', () => tf.tidy(f));
    await selectBackend('wasm');
    const before = tf.memory().numDataBuffers;
    const got = await on('wasm', () => tf.tidy(f));
    expect(tf.memory().numDataBuffers).toBe(before); // the temporary transpose is freed
    expect(relErr(got, want)).toBeLessThan(1e-6);
  });

  it('fused matMul (bias, activation) with transposed operands equals the cpu result, gradients too', async () => {
    const x = randomArray(32 * 12, 3);
    const w = randomArray(20 * 12, 4);
    const bias = randomArray(20, 5);
    const f = () =>
      tf.tidy(() => {
        const xs = tf.tensor(x, [32, 12]);
        const ws = tf.tensor(w, [20, 12]);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.fused.matMul({ a, b, transposeB: true, bias: tf.tensor(bias), activation: 'relu' })),
        )([xs, ws]);
        return tf.concat([g[0]!.flatten(), g[1]!.flatten()]);
      });
    const want = await on('cpu', f);
    const got = await on('wasm', f);
    expect(relErr(got, want)).toBeLessThan(1e-6);
  });
});

describe('wasm OneHot', () => {
  it.each(['float32', 'int32'] as const)(
    'writes on/off values of dtype %s (tfjs 4.22 wrote int bits into floats)',
    async (dtype) => {
      const f = () => tf.oneHot(tf.tensor1d([0, 2, 1, 5, -1], 'int32'), 3, 0.75, -2, dtype);
      const want = await on('cpu', f);
      const got = await on('wasm', f);
      expect(Array.from(got)).toEqual(Array.from(want));
      expect(Array.from(want).slice(0, 3)).toEqual(dtype === 'float32' ? [0.75, -2, -2] : [0, -2, -2]);
    },
  );
});

describe('wasm in-place writes and XNNPACK operator caches', () => {
  it('a matMul after an in-place AdamW update or addInPlace multiplies by the new values', async () => {
    const { adamwUpdate, addInPlace } = await import('../src/index.ts');
    await selectBackend('wasm');
    const w = tf.tidy(() => tf.variable(tf.tensor(randomArray(16 * 8, 7), [16, 8])));
    const m = tf.tidy(() => tf.variable(tf.zeros([16, 8]), false));
    const v = tf.tidy(() => tf.variable(tf.zeros([16, 8]), false));
    const x = tf.tensor(randomArray(4 * 16, 8), [4, 16]);
    const g = tf.tensor(randomArray(16 * 8, 9), [16, 8]);
    const fresh = async () => {
      const copy = tf.tensor(await w.data(), [16, 8]);
      const y = tf.matMul(x, copy);
      const out = await y.data();
      tf.dispose([copy, y]);
      return out;
    };
    const product = async () => {
      const y = tf.matMul(x, w);
      const out = await y.data();
      y.dispose();
      return out;
    };
    await product(); // builds and caches the operator for w
    adamwUpdate(w, g, m, v, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 });
    expect(relErr(await product(), await fresh())).toBeLessThan(1e-6);
    const sum = addInPlace(w, g);
    expect(sum).toBe(w);
    expect(relErr(await product(), await fresh())).toBeLessThan(1e-6);
    tf.dispose([w, m, v, x, g]);
  });
});
