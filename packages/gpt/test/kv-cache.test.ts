import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGPT, type GPTConfig, type GPTModel, generate, KVCache } from '../src/index.ts';

// Heads of width 8, a context of 16: the greedy run below crosses it (the window then slides).
const CONFIG: GPTConfig = { vocabSize: 48, nLayer: 2, nHead: 2, nEmbd: 16, blockSize: 16 };
let model: GPTModel;

beforeAll(async () => {
  await tf.setBackend('cpu');
  model = createGPT(CONFIG, { seed: 5 });
  // Weights far from GPT-2's small init, so that greedy text varies (at init it repeats one token).
  let seed = 0;
  for (const v of model.variables.values())
    if (v.rank === 2) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.4, 'float32', ++seed)));
});
afterAll(() => model.dispose());

const ids = (values: number[]) => tf.tensor2d(Int32Array.from(values), [1, values.length], 'int32');

/** Rows [from, to) of the full recompute's logits for `seq` (the reference: no cache). */
function fullLogits(seq: number[], from: number): number[][] {
  const logits = model.forwardLogits(ids(seq)); // [1, T, V]
  const rows = (logits.arraySync() as number[][][])[0]!.slice(from);
  logits.dispose();
  return rows;
}

describe('KVCache', () => {
  it('gives the full recompute logits for a prompt, single tokens and a chunk (float32 tolerance)', () => {
    const cache = new KVCache(CONFIG);
    const seq = [3, 17, 40, 8, 8];
    const steps = [seq.slice(), [21], [0], [47, 5, 12], [30]];
    const all: number[] = [];
    let worst = 0;
    try {
      for (const chunk of steps) {
        const from = all.length;
        all.push(...chunk);
        const got = cache.forward(ids(chunk), model.paramRecord()); // [1, chunk, V]
        const rows = (got.arraySync() as number[][][])[0]!;
        got.dispose();
        const want = fullLogits(all, from);
        expect(rows).toHaveLength(chunk.length);
        for (let r = 0; r < rows.length; r++)
          for (let c = 0; c < CONFIG.vocabSize; c++)
            worst = Math.max(worst, Math.abs(rows[r]![c]! - want[r]![c]!));
      }
      expect(cache.length).toBe(all.length);
      expect(worst).toBeLessThan(1e-5);
      // Not trivially equal: the logits of the last position depend on the earlier tokens.
      const other = fullLogits([4, ...all.slice(1)], all.length - 1)[0]!;
      const last = fullLogits(all, all.length - 1)[0]!;
      expect(Math.max(...last.map((x, c) => Math.abs(x - other[c]!)))).toBeGreaterThan(1e-4);
      expect(() => cache.forward(ids(new Array(CONFIG.blockSize).fill(1)), model.paramRecord())).toThrow(
        /exceed the context blockSize = 16/,
      );
    } finally {
      cache.dispose();
    }
  });

  it('greedy generation with the cache equals the recompute token for token, past the context, leaking nothing', async () => {
    const options = { tokens: 20, temperature: 0, random: () => 0 };
    const prompt = [1, 2, 3];
    const without = await generate(model, prompt, { ...options, kvCache: false }, () => {});
    const before = tf.memory().numTensors;
    const streamed: number[] = [];
    const withCache = await generate(model, prompt, options, (id) => streamed.push(id));
    expect(tf.memory().numTensors).toBe(before);
    expect(withCache).toEqual(without);
    expect(streamed).toEqual(withCache);
    expect(prompt.length + withCache.length).toBeGreaterThan(CONFIG.blockSize);
    expect(new Set(withCache).size).toBeGreaterThan(1);
  });
});
