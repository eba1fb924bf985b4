import { InputError, ShapeError, SPECIFICATION_VERSION, TrainingEngine } from '@kstar/core';
import { callUntyped } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  attentionRanges,
  chooseChunks,
  defaultChunks,
  mst,
  parseMstSpec,
  predictLossBytes,
  predictMlpBytes,
  predictMstBytes,
  splitBalanced,
} from '../src/index.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('mst() options', () => {
  it('is an activation strategy that replaces the three model ops', () => {
    const s = mst({ chunks: 4 });
    expect(s.kind).toBe('activation');
    expect(s.name).toBe('mst');
    expect(s.specificationVersion).toBe(SPECIFICATION_VERSION);
    expect(Object.keys(s.ops).sort()).toEqual(['attention', 'linearCrossEntropy', 'mlp']);
    expect(s.describe()).toEqual({ chunks: 4 });
    expect(s.planSegments).toBeUndefined();
    expect(s.codec).toBeUndefined();
  });

  it('rejects bad values with an InputError that names them', () => {
    expect(() => mst({ chunks: 0 })).toThrow(/chunks = 0/);
    expect(() => mst({ mlpChunks: 2.5 })).toThrow(InputError);
    expect(() => mst({ attentionChunk: -1 })).toThrow(/attentionChunk = -1/);
    expect(() => mst({ lossChunks: Number.NaN })).toThrow(/lossChunks = NaN/);
    expect(() => mst({ targetBytes: 0 })).toThrow(/targetBytes = 0/);
    expect(() => mst({ chunks: 2, targetBytes: 1e6 })).toThrow(/keep one of them/);
    expect(() => callUntyped(mst, { chunk: 3 })).toThrow(/'chunk' is unknown/);
  });

  it('parses the trainer flag: mst, mst:M, per-op fields, a target', () => {
    expect(parseMstSpec('mst')).toEqual({});
    expect(parseMstSpec('mst:8')).toEqual({ chunks: 8 });
    expect(parseMstSpec('mst:mlp=4,attn=64,loss=2')).toEqual({
      mlpChunks: 4,
      attentionChunk: 64,
      lossChunks: 2,
    });
    expect(parseMstSpec('mst:target=64e6')).toEqual({ targetBytes: 64e6 });
    expect(() => parseMstSpec('mst:x=3')).toThrow(/field 'x=3'/);
    expect(() => parseMstSpec('mst:0')).toThrow(/chunks = 0/);
  });

  it('rejects tensors of the wrong shape with a ShapeError', () => {
    const { ops } = mst();
    const x = tf.zeros([4, 3]);
    const w = tf.zeros([5, 2]);
    const t = tf.zeros([4], 'float32');
    expect(() => ops.linearCrossEntropy(x, w, t)).toThrow(ShapeError);
    expect(() => ops.mlp(x, w, w, w, w, (h) => h)).toThrow(ShapeError);
    expect(() => ops.attention(x, x, x, 1)).toThrow(ShapeError);
    tf.dispose([x, w, t]);
  });

  it('composes with the engine next to a strategy that plans segments, and conflicts with another op provider', () => {
    const model = {
      stages: [{ name: 's', params: ['p'], forward: (x: tf.Tensor) => x }],
      variables: new Map([['p', tf.variable(tf.zeros([1]))]]),
      paramInfo: () => ({ name: 'p', shape: [1], role: 'vector' as const }),
    };
    const opt = {
      specificationVersion: SPECIFICATION_VERSION,
      kind: 'optimizer' as const,
      name: 'none',
      describe: () => ({}),
      init: () => ({}),
      update: () => {},
      stateBytes: () => 0,
    };
    expect(() => new TrainingEngine(model, { optimizer: opt, activations: [mst(), mst()] })).toThrow(
      /both replace/,
    );
    const e = new TrainingEngine(model, { optimizer: opt, activations: [mst({ chunks: 2 })] });
    expect(Object.keys(e.ops).sort()).toEqual(['attention', 'linearCrossEntropy', 'mlp']);
    model.variables.get('p')!.dispose();
  });
});

describe('chunking rules and predictions', () => {
  it('splits rows evenly with the tail spread over the first chunks, and attention by size with a tail', () => {
    expect(splitBalanced(10, 4).map((r) => r.size)).toEqual([3, 3, 2, 2]);
    expect(splitBalanced(3, 8).map((r) => r.size)).toEqual([1, 1, 1]);
    expect(attentionRanges(37, { chunk: 8 }).map((r) => [r.start, r.size])).toEqual([
      [0, 8],
      [8, 8],
      [16, 8],
      [24, 8],
      [32, 5],
    ]);
    expect(attentionRanges(37, { chunks: 4 }).map((r) => r.size)).toEqual([10, 10, 10, 7]);
  });

  it("uses MsT's defaults: MLP chunk ≈ D tokens, loss M = ⌈V/D⌉, attention chunk = D/H", () => {
    // Llama-3-8B-like: D 4096, V 128256 → loss M = 32 (the reference's number); 8 × 8192 rows → 16 MLP chunks.
    expect(defaultChunks({ rows: 8 * 8192, nEmbd: 4096, nHead: 32, vocab: 128256 })).toEqual({
      mlpChunks: 16,
      attentionChunk: 128,
      lossChunks: 32,
    });
  });

  it('predicts the chunked ops below the unchunked ones and picks the coarsest chunking under a target', () => {
    const shape = { batch: 8, seq: 1024, nEmbd: 384, nHead: 6, vocab: 256 };
    const p = predictMstBytes({ ...shape, chunks: 16 });
    for (const op of ['mlp', 'attention', 'loss'] as const)
      expect(p[op].chunked).toBeLessThan(p[op].unchunked);
    expect(p.peak.unchunked).toBe(Math.max(p.mlp.unchunked, p.attention.unchunked, p.loss.unchunked));
    const target = 128e6;
    const c = chooseChunks({ ...shape, targetBytes: target });
    const q = predictMstBytes({ ...shape, ...c });
    expect(q.mlp.chunked).toBeLessThanOrEqual(target);
    expect(q.attention.chunked).toBeLessThanOrEqual(target);
    expect(q.loss.chunked).toBeLessThanOrEqual(target);
    // The coarsest: one chunk fewer (or a larger attention chunk) would not fit.
    const N = shape.batch * shape.seq;
    if (c.mlpChunks > 1) expect(predictMlpBytes(N, 384, 1536, c.mlpChunks - 1)).toBeGreaterThan(target);
    if (c.lossChunks > 1) expect(predictLossBytes(N, 384, 256, c.lossChunks - 1)).toBeGreaterThan(target);
    expect(() => chooseChunks({ ...shape, targetBytes: 1e3 })).toThrow(
      /targetBytes = 1000 cannot be met by the MLP/,
    );
    expect(() => chooseChunks({ ...shape, nHead: 5, targetBytes: 1e9 })).toThrow(/nHead = 5/);
  });

  it('predicts a segment from its stages when given the model sizes', () => {
    const dims = { nEmbd: 32, nHead: 4, vocab: 100 };
    const s = mst({ chunks: 4, dims });
    const info = { index: 1, batch: 2, seq: 16, stageNames: ['block0'] };
    const p = predictMstBytes({ batch: 2, seq: 16, ...dims, chunks: 4 });
    expect(s.predictBytes!(info)).toBe(Math.max(p.mlp.chunked, p.attention.chunked));
    expect(s.predictBytes!({ ...info, stageNames: ['head'] })).toBe(p.loss.chunked);
    expect(mst().predictBytes).toBeUndefined();
  });
});
