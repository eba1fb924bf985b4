import type { Collective } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { agreeOnConfig, gatherNumbers, rankBatch } from '../src/index.ts';

type Gather = Pick<Collective, 'size' | 'allGather'>;

/** Two ranks in one process for one all-gather: each waits for the other's piece, then both get rank order. */
function twoRanks(): [Gather, Gather] {
  const pieces: tf.Tensor[] = [];
  let release: () => void = () => {};
  const both = new Promise<void>((resolve) => {
    release = resolve;
  });
  const rank = (r: number): Gather => ({
    size: 2,
    async allGather(x) {
      pieces[r] = x;
      if (pieces.filter(Boolean).length === 2) release();
      await both;
      return tf.concat(pieces.map((p) => tf.reshape(p, [-1])));
    },
  });
  return [rank(0), rank(1)];
}

describe('data parallelism over a collective', () => {
  it("a rank's rows are its slice of the global batch; a batch that does not split is refused", async () => {
    const inputs = tf.tensor2d([0, 1, 2, 3, 4, 5, 6, 7], [4, 2], 'int32'); // [B, T]
    const b = rankBatch({ inputs, targets: inputs }, 1, 2);
    expect(Array.from(await b.inputs.data())).toEqual([4, 5, 6, 7]);
    expect(() => rankBatch({ inputs, targets: inputs }, 0, 3)).toThrow(/4 rows does not split evenly over 3/);
    tf.dispose([inputs, b.inputs, b.targets]);
  });

  it('ranks that differ in one field both stop, naming it; equal ones pass', async () => {
    const [r0, r1] = twoRanks();
    const results = await Promise.allSettled([
      agreeOnConfig(r0, { seed: 1, lr: 0.1 }, ['seed', 'lr']),
      agreeOnConfig(r1, { seed: 1, lr: 0.2 }, ['seed', 'lr']),
    ]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(String((r as PromiseRejectedResult).reason)).toMatch(/config field 'lr' \(rank 1 differ/);
    }
    const [s0, s1] = twoRanks();
    await expect(
      Promise.all([agreeOnConfig(s0, { seed: 1 }, ['seed']), agreeOnConfig(s1, { seed: 1 }, ['seed'])]),
    ).resolves.toEqual([undefined, undefined]);
  });

  it('every rank gets every rank’s numbers exactly, past float32’s integers', async () => {
    const [r0, r1] = twoRanks();
    const mine = [
      [2 ** 40 + 3, 5],
      [7, 2 ** 33 + 1],
    ];
    const [a, b] = await Promise.all([gatherNumbers(r0, mine[0]!), gatherNumbers(r1, mine[1]!)]);
    expect(a).toEqual(mine);
    expect(b).toEqual(mine);
  });
});
