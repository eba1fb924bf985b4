import { mst, predictAttentionBytes, predictLossBytes, predictMlpBytes } from '@kstar/act-mst';
import { MemoryLedger } from '@kstar/core';
import { attentionCore, gelu, linearCrossEntropyCore, mlpCore } from '@kstar/gpt';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randn, targetsOf } from './mst-helpers.ts';

/**
 * Peak bytes of new unique buffers (the ledger) while the value of f and the gradients of all its inputs are
 * computed with upstream gradient dy: the op's working set as `src/predict.ts` defines it.
 */
function peakOf(
  ledger: MemoryLedger,
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  dy?: tf.Tensor,
) {
  const start = tf.memory().numTensors;
  const { result, peakNewBytes } = ledger.measure(() =>
    tf.grads((...xs: tf.Tensor[]) => f(...xs))(inputs, dy),
  );
  tf.dispose(result);
  expect(tf.memory().numTensors).toBe(start);
  return peakNewBytes;
}

/** Prediction within 1% of the measurement (the formulas leave out scalars only). */
function expectPredicted(measured: number, predicted: number, what: string) {
  expect(
    Math.abs(predicted - measured) / measured,
    `${what}: predicted ${predicted}, measured ${measured}`,
  ).toBeLessThan(0.01);
}

let ledger: MemoryLedger;
beforeAll(async () => {
  await tf.setBackend('cpu');
  ledger = new MemoryLedger();
});
afterAll(() => ledger.detach());

describe('MsT working sets (unique buffers, cpu)', () => {
  it('LM head + loss: the chunked peak is below half the unchunked one, as predicted', () => {
    for (const [N, D, V, M] of [
      [256, 16, 512, 8],
      [100, 8, 300, 3],
      [64, 32, 1024, 16], // fine chunks: the dW part's moment wins
    ] as const) {
      const h = randn([N, D], 1);
      const w = randn([V, D], 2, 0.3);
      const t = targetsOf(N, V);
      const own = peakOf(ledger, (a, b) => linearCrossEntropyCore(a!, b!, t), [h, w]);
      const op = mst({ lossChunks: M }).ops.linearCrossEntropy;
      const ours = peakOf(ledger, (a, b) => op(a!, b!, t), [h, w]);
      expect(ours).toBeLessThan(0.5 * own);
      expectPredicted(own, predictLossBytes(N, D, V), `loss N=${N} V=${V} unchunked`);
      expectPredicted(ours, predictLossBytes(N, D, V, M), `loss N=${N} V=${V} M=${M}`);
      tf.dispose([h, w, t]);
    }
  });

  it('MLP: the tiled backward holds one chunk graph (peak below half the unchunked one), as predicted', () => {
    for (const [N, D, M] of [
      [256, 16, 8],
      [100, 8, 3],
      [64, 32, 16], // fine chunks: the end of a chunk's backward wins
    ] as const) {
      const F = 4 * D;
      const inputs = [
        randn([N, D], 1),
        randn([D, F], 2, 0.3),
        randn([F], 3),
        randn([F, D], 4, 0.3),
        randn([D], 5),
      ];
      const dy = randn([N, D], 6);
      const own = peakOf(ledger, (x, a, b, c, d) => mlpCore(x!, a!, b!, c!, d!, gelu), inputs, dy);
      const op = mst({ mlpChunks: M }).ops.mlp;
      const ours = peakOf(ledger, (x, a, b, c, d) => op(x!, a!, b!, c!, d!, gelu), inputs, dy);
      expect(ours).toBeLessThan(0.5 * own);
      expectPredicted(own, predictMlpBytes(N, D, F), `mlp N=${N} unchunked`);
      expectPredicted(ours, predictMlpBytes(N, D, F, M), `mlp N=${N} M=${M}`);
      tf.dispose([...inputs, dy]);
    }
  });

  it('attention: query chunks keep the scores O(T·chunk) (peak below half the unchunked one), as predicted', () => {
    for (const [B, H, T, hd, c] of [
      [2, 2, 128, 8, 16],
      [4, 2, 96, 4, 8],
      [1, 2, 37, 4, 8],
      [1, 2, 64, 16, 4], // fine chunks: the dq, dk parts' moment wins
    ] as const) {
      const inputs = [randn([B, H, T, hd], 1), randn([B, H, T, hd], 2), randn([B, H, T, hd], 3)];
      const dy = randn([B, H, T, hd], 4);
      const own = peakOf(ledger, (q, k, v) => attentionCore(q!, k!, v!, 0.3), inputs, dy);
      const op = mst({ attentionChunk: c }).ops.attention;
      const ours = peakOf(ledger, (q, k, v) => op(q!, k!, v!, 0.3), inputs, dy);
      if (T >= 96) expect(ours).toBeLessThan(0.5 * own);
      expectPredicted(own, predictAttentionBytes(B, H, T, hd), `attention T=${T} unchunked`);
      expectPredicted(ours, predictAttentionBytes(B, H, T, hd, c), `attention T=${T} chunk ${c}`);
      tf.dispose([...inputs, dy]);
    }
  });
});
