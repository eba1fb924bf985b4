import { selectBackend } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { checkpoint, parsePlan, planSegments, selectiveAttention } from '../src/index.ts';

describe('segment plans', () => {
  it('every, every:K, sqrt over L blocks between the embedding and the head', () => {
    // 6 blocks: stages 0 (embedding), 1..6, 7 (head).
    expect(planSegments('every', 8)).toEqual([[0, 1], [2], [3], [4], [5], [6], [7]]);
    expect(planSegments('every:4', 8)).toEqual([[0, 1, 2, 3, 4], [5, 6], [7]]);
    expect(planSegments('sqrt', 8)).toEqual([[0, 1, 2, 3], [4, 5, 6], [7]]); // round(√6) = 2 groups of 3
    expect(planSegments('sqrt', 14)).toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13]]); // 12 blocks: 3 × 4
    expect(planSegments([[0], [1, 2], [3]], 4)).toEqual([[0], [1, 2], [3]]);
    expect(planSegments('every', 2)).toEqual([[0, 1]]);
  });

  it('parses plans and rejects unknown ones with an InputError naming them', () => {
    expect(parsePlan('every:3')).toBe('every:3');
    expect(parsePlan('[[0,1],[2]]')).toEqual([[0, 1], [2]]);
    expect(parsePlan('selective')).toBe('selective');
    expect(() => parsePlan('every:0')).toThrow(/every:0/);
    expect(() => parsePlan('often')).toThrow(/'often' is unknown/);
    expect(() => checkpoint({ plan: 'every:x' as 'every' })).toThrow(/every:x/);
  });

  it('selective alone has no plan; predictBytes uses the injected predictor with the plan made', () => {
    expect(checkpoint({ plan: 'selective' }).planSegments).toBeUndefined();
    expect(checkpoint({ selective: true }).ops?.attention).toBe(selectiveAttention);
    const seen: unknown[] = [];
    const ck = checkpoint({
      plan: 'every',
      predictor: (segments, b, t, o) => {
        seen.push([segments, b, t, o.selective]);
        return 42;
      },
    });
    const stages = Array.from({ length: 4 }, (_, i) => ({ name: `s${i}`, params: [] }));
    ck.planSegments!(stages);
    expect(ck.predictBytes!({ index: 0, stageNames: [], batch: 2, seq: 9 })).toBe(42);
    expect(seen).toEqual([[[[0, 1], [2], [3]], 2, 9, false]]);
  });
});

/** Reference: softmax(scale·q·kᵀ + causal mask)·v with plain tfjs ops (tape records everything). */
function reference(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, scale: number): tf.Tensor {
  const T = q.shape[2]!;
  const mask = tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)).mul(-1e9);
  return tf.matMul(tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), scale), mask)), v);
}

describe.each(['cpu', 'wasm'] as const)('selective attention on %s', (backend) => {
  it('value and gradients equal the plain formula; no tensor left behind', async () => {
    await selectBackend(backend);
    const [B, H, T, hd] = [2, 3, 13, 8];
    const scale = 1 / Math.sqrt(hd);
    const [q, k, v, dy] = [1, 2, 3, 4].map((s) => tf.randomNormal([B, H, T, hd], 0, 1, 'float32', s));
    const before = tf.memory().numTensors;
    const f = (fn: typeof reference) => tf.grads((a, b, c) => fn(a!, b!, c!, scale));
    const got = tf.tidy(() => [
      selectiveAttention(q!, k!, v!, scale),
      ...f(selectiveAttention)([q!, k!, v!], dy),
    ]);
    const want = tf.tidy(() => [reference(q!, k!, v!, scale), ...f(reference)([q!, k!, v!], dy)]);
    for (let i = 0; i < 4; i++) {
      const err = tf.tidy(() => tf.max(tf.abs(tf.sub(got[i]!, want[i]!))).dataSync()[0]!);
      const mag = tf.tidy(() => tf.max(tf.abs(want[i]!)).dataSync()[0]!);
      expect(err / mag, `output ${i}`).toBeLessThan(1e-5);
    }
    tf.dispose([...got, ...want]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([q!, k!, v!, dy!]);
  });
});
