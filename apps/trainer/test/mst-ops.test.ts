import { mst } from '@kstar/act-mst';
import { attentionCore, gelu, linearCrossEntropyCore, mlpCore } from '@kstar/gpt';
import { selectBackend } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randn, relErr, targetsOf, valueAndGrads } from './mst-helpers.ts';

/**
 * Each MsT op against the model's own version (@kstar/gpt), value and the gradient of every input, at uneven sizes.
 * The upstream gradient dy is random, so each output element is weighted differently.
 */
function checkMlp(N: number, D: number, chunks: number) {
  const F = 4 * D;
  const inputs = [
    randn([N, D], 1),
    randn([D, F], 2, 0.3),
    randn([F], 3, 0.1),
    randn([F, D], 4, 0.3),
    randn([D], 5, 0.1),
  ];
  const dy = randn([N, D], 6);
  const own = valueAndGrads((x, a, b, c, d) => mlpCore(x!, a!, b!, c!, d!, gelu), inputs, dy);
  const op = mst({ mlpChunks: chunks }).ops.mlp;
  const ours = valueAndGrads((x, a, b, c, d) => op(x!, a!, b!, c!, d!, gelu), inputs, dy);
  expect(relErr(ours.value, own.value)).toBeLessThan(1e-5);
  ours.grads.forEach((g, i) => {
    expect(relErr(g, own.grads[i]!), `grad ${i}`).toBeLessThan(1e-4);
  });
  tf.dispose([...inputs, dy, own.value, ...own.grads, ours.value, ...ours.grads]);
}

function checkAttention(
  B: number,
  H: number,
  T: number,
  hd: number,
  opts: { attentionChunk?: number; chunks?: number },
) {
  const inputs = [randn([B, H, T, hd], 11), randn([B, H, T, hd], 12), randn([B, H, T, hd], 13)];
  const dy = randn([B, H, T, hd], 14);
  const scale = 1 / Math.sqrt(hd);
  const own = valueAndGrads((q, k, v) => attentionCore(q!, k!, v!, scale), inputs, dy);
  const op = mst(opts).ops.attention;
  const ours = valueAndGrads((q, k, v) => op(q!, k!, v!, scale), inputs, dy);
  expect(relErr(ours.value, own.value)).toBeLessThan(1e-5);
  ours.grads.forEach((g, i) => {
    expect(relErr(g, own.grads[i]!), `d${'qkv'[i]}`).toBeLessThan(1e-4);
  });
  tf.dispose([...inputs, dy, own.value, ...own.grads, ours.value, ...ours.grads]);
}

/** float64 reference of mean CE(h·wᵀ, t) and its gradients w.r.t. h and w (dy = 1). */
function lossF64(h: Float32Array, w: Float32Array, t: Int32Array, N: number, D: number, V: number) {
  let loss = 0;
  const dh = new Float64Array(N * D);
  const dw = new Float64Array(V * D);
  for (let n = 0; n < N; n++) {
    const z = new Float64Array(V);
    for (let v = 0; v < V; v++) for (let d = 0; d < D; d++) z[v]! += h[n * D + d]! * w[v * D + d]!;
    const m = Math.max(...z);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(z[v]! - m);
    const lse = m + Math.log(s);
    loss += lse - z[t[n]!]!;
    for (let v = 0; v < V; v++) {
      const g = (Math.exp(z[v]! - lse) - (v === t[n] ? 1 : 0)) / N;
      for (let d = 0; d < D; d++) {
        dh[n * D + d]! += g * w[v * D + d]!;
        dw[v * D + d]! += g * h[n * D + d]!;
      }
    }
  }
  return { loss: loss / N, dh, dw };
}

function checkLoss(N: number, D: number, V: number, chunks: number) {
  const h = randn([N, D], 21);
  const w = randn([V, D], 22, 0.5);
  const t = targetsOf(N, V, chunks);
  const own = valueAndGrads((a, b) => linearCrossEntropyCore(a!, b!, t), [h, w]);
  const op = mst({ lossChunks: chunks }).ops.linearCrossEntropy;
  const ours = valueAndGrads((a, b) => op(a!, b!, t), [h, w]);
  expect(ours.value.shape).toEqual([]);
  expect(relErr(ours.value, own.value)).toBeLessThan(1e-5);
  expect(relErr(ours.grads[0]!, own.grads[0]!), 'dh').toBeLessThan(1e-4);
  expect(relErr(ours.grads[1]!, own.grads[1]!), 'dw').toBeLessThan(1e-4);
  const ref = lossF64(
    h.dataSync() as Float32Array,
    w.dataSync() as Float32Array,
    t.dataSync() as Int32Array,
    N,
    D,
    V,
  );
  expect(relErr(ours.value, [ref.loss])).toBeLessThan(1e-5);
  expect(relErr(ours.grads[0]!, ref.dh), 'dh vs float64').toBeLessThan(1e-4);
  expect(relErr(ours.grads[1]!, ref.dw), 'dw vs float64 (counted once, not 2×)').toBeLessThan(1e-4);
  tf.dispose([h, w, t, own.value, ...own.grads, ours.value, ...ours.grads]);
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`MsT ops equal the model's own (${backend})`, () => {
    beforeAll(async () => {
      await selectBackend(backend);
    });
    afterAll(async () => {
      await tf.setBackend('cpu');
    });

    it('MLP: value and the gradients of x, wfc, bfc, wproj, bproj (N = 37 over 4, 5, 1, 37 chunks)', () => {
      const start = tf.memory().numTensors;
      for (const m of [4, 5, 1, 37]) checkMlp(37, 8, m);
      checkMlp(6, 8, 100); // more chunks than rows: one row each
      expect(tf.memory().numTensors).toBe(start);
    });

    it('attention: value and dq, dk, dv (T = 37, chunk 8 with a 5-token tail; 3 balanced chunks; 1; ≥ T)', () => {
      const start = tf.memory().numTensors;
      checkAttention(2, 2, 37, 4, { attentionChunk: 8 });
      checkAttention(2, 2, 37, 4, { chunks: 3 });
      checkAttention(1, 3, 13, 4, { attentionChunk: 1 });
      checkAttention(1, 2, 9, 4, { attentionChunk: 64 });
      expect(tf.memory().numTensors).toBe(start);
    });

    it('LM head + loss: loss and dh, dw vs the model and a float64 reference (N = 37 over 4, 5 chunks; N = 7 over 7)', () => {
      const start = tf.memory().numTensors;
      checkLoss(37, 8, 11, 4);
      checkLoss(37, 8, 11, 5);
      checkLoss(7, 6, 23, 7);
      checkLoss(10, 4, 5, 1);
      expect(tf.memory().numTensors).toBe(start);
    });
  });
}
