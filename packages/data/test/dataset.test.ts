import { InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTokenizer, minTokensFor, splitIndex, TokenDataset, windowsToBatch } from '../src/index.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Tokens equal to their own position (mod 256): a window's first token says where it starts. */
function ramp(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i % 256);
}

/** A dataset whose tokens are 0..n-1, so a token's value is its position. */
function positional(n: number, seed = 1): TokenDataset {
  return new TokenDataset(
    Int32Array.from({ length: n }, (_, i) => i),
    { vocabSize: n, seed, name: 'pos' },
  );
}

describe('the held-out split', () => {
  it('is the last 10% of the tokens', () => {
    const ds = positional(1000);
    expect(ds.train.length).toBe(900);
    expect(ds.val.length).toBe(100);
    expect(ds.train[899]).toBe(899);
    expect(ds.val[0]).toBe(900);
    expect(splitIndex(15)).toBe(13);
    expect(positional(15).val.length).toBe(2);
  });

  it('rejects a corpus too short for T, saying how many tokens it has', () => {
    const ds = positional(50);
    let err: unknown;
    try {
      ds.sampleTrainWindows(2, 8);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    const msg = (err as InputError).message;
    expect(msg).toContain('too short for sequence length 8');
    expect(msg).toContain('has 50 tokens');
    expect(msg).toContain('at least 81 tokens');
    expect(() => ds.valBatches(1, 4, 1)).not.toThrow(); // 5 validation tokens fit T = 4
    expect(() => ds.checkShape(1, 0)).toThrow(InputError);
    expect(() => ds.checkShape(0, 4)).toThrow(InputError);
  });

  it('minTokensFor(T) is the smallest corpus that fits T', () => {
    for (let T = 1; T <= 40; T++) {
      const n = minTokensFor(T);
      expect(() => positional(n).checkShape(1, T)).not.toThrow();
      expect(() => positional(n - 1).checkShape(1, T)).toThrow(InputError);
    }
  });

  it('rejects tokens outside the vocabulary', () => {
    expect(() => new TokenDataset(Int32Array.from([1, 2, 300]), { vocabSize: 256 })).toThrow(InputError);
  });
});

describe('training windows', () => {
  it('are the same for the same seed and differ for another seed', () => {
    const a = positional(5000, 123);
    const b = positional(5000, 123);
    const c = positional(5000, 124);
    for (let i = 0; i < 3; i++) {
      const wa = a.sampleTrainWindows(4, 16).data;
      expect(Array.from(b.sampleTrainWindows(4, 16).data)).toEqual(Array.from(wa));
      expect(Array.from(c.sampleTrainWindows(4, 16).data)).not.toEqual(Array.from(wa));
    }
  });

  it('are contiguous runs of the training split, and cover it', () => {
    const n = 100;
    const T = 9;
    const ds = positional(n, 9);
    const starts = new Set<number>();
    for (let step = 0; step < 200; step++) {
      const { data } = ds.sampleTrainWindows(8, T);
      for (let b = 0; b < 8; b++) {
        const s = data[b * (T + 1)];
        for (let k = 0; k <= T; k++) expect(data[b * (T + 1) + k]).toBe(s + k);
        expect(s + T).toBeLessThan(splitIndex(n)); // never reaches the validation split
        starts.add(s);
      }
    }
    // 1600 draws over 81 possible starts: every start, including both ends, shows up.
    expect(starts.size).toBe(splitIndex(n) - T);
    expect(starts.has(0)).toBe(true);
    expect(starts.has(splitIndex(n) - T - 1)).toBe(true);
  });

  it('can be resumed from a saved sampler state', () => {
    const ds = positional(3000, 5);
    ds.sampleTrainWindows(2, 8);
    const state = ds.rngState;
    const next = Array.from(ds.sampleTrainWindows(2, 8).data);
    const other = positional(3000, 99);
    other.rngState = state;
    expect(Array.from(other.sampleTrainWindows(2, 8).data)).toEqual(next);
  });

  it('become int32 [B, T] tensors with targets shifted by one', () => {
    const ds = new TokenDataset(ramp(2000), { vocabSize: 256, seed: 3 });
    const before = tf.memory().numTensors;
    const { inputs, targets } = ds.trainBatch(3, 12);
    expect(inputs.shape).toEqual([3, 12]);
    expect(targets.shape).toEqual([3, 12]);
    expect(inputs.dtype).toBe('int32');
    expect(targets.dtype).toBe('int32');
    const x = inputs.arraySync() as number[][];
    const y = targets.arraySync() as number[][];
    for (let b = 0; b < 3; b++) {
      expect(y[b].slice(0, 11)).toEqual(x[b].slice(1));
      expect(y[b][11]).toBe((x[b][11] + 1) % 256);
    }
    inputs.dispose();
    targets.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('validation windows', () => {
  it('are fixed, evenly spaced over the validation split, and independent of the sampler', () => {
    const n = 2000;
    const T = 7;
    const a = positional(n, 1);
    const b = positional(n, 2);
    b.sampleTrainWindows(16, T); // advancing the train sampler changes nothing
    const va = a.valWindows(4, T, 3);
    const vb = b.valWindows(4, T, 3);
    expect(va.map((w) => Array.from(w.data))).toEqual(vb.map((w) => Array.from(w.data)));
    const starts = va.flatMap((w) => Array.from({ length: 4 }, (_, i) => w.data[i * (T + 1)]));
    const valStart = splitIndex(n);
    expect(starts[0]).toBe(valStart); // first window at the start of the split
    expect(starts[11]).toBe(n - T - 1); // last window ends at the last token
    for (let i = 1; i < starts.length; i++) expect(starts[i]).toBeGreaterThan(starts[i - 1]);
    for (const w of va) {
      for (let i = 0; i < 4; i++) {
        for (let k = 0; k <= T; k++) expect(w.data[i * (T + 1) + k]).toBe(w.data[i * (T + 1)] + k);
      }
    }
  });

  it('become tensors the caller disposes', () => {
    const ds = positional(1000);
    const before = tf.memory().numTensors;
    const batches = ds.valBatches(2, 5, 3);
    expect(batches).toHaveLength(3);
    const x = batches[0].inputs.arraySync() as number[][];
    expect(x[0][0]).toBe(900);
    for (const bt of batches) {
      expect(bt.inputs.shape).toEqual([2, 5]);
      tf.dispose([bt.inputs, bt.targets]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('windowsToBatch rejects a window buffer of the wrong size', () => {
    expect(() => windowsToBatch({ B: 2, T: 3, data: new Int32Array(7) })).toThrow(RangeError);
  });
});

describe('TokenDataset.fromCorpus', () => {
  it('tokenizes the corpus text with the tokenizer', () => {
    const text = 'héllo world, '.repeat(40);
    const ds = TokenDataset.fromCorpus(
      { name: 'tiny', text, source: 'test', files: [] },
      createTokenizer('byte'),
    );
    expect(ds.vocabSize).toBe(256);
    expect(ds.tokens.length).toBe(Buffer.byteLength(text));
    expect(createTokenizer('byte').decode(ds.tokens)).toBe(text);
    const g = TokenDataset.fromCorpus(
      { name: 'tiny', text, source: 'test', files: [] },
      createTokenizer('gpt2'),
    );
    expect(g.vocabSize).toBe(50257);
    expect(createTokenizer('gpt2').decode(g.tokens)).toBe(text);
  });
});
