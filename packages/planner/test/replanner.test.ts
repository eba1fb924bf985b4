import type { ReplanOptions, StepResult } from '@kstar/core';
import { stepResultPeaking } from '@kstar/testkit';
import { describe, expect, it } from 'vitest';
import {
  autoBudget,
  isOutOfMemory,
  OOM_SHRINK,
  type PlanReason,
  pinProblem,
  Replanner,
  solveExhaustive,
} from '../src/index.ts';

/** A planner whose plans predict `peakAt(budget)`: enough to follow the budget it is handed. */
class FakePlanner extends Replanner<{ predictedPeakBytes: number; seq: number }> {
  readonly made: Array<[number, PlanReason, number]> = [];
  readonly details: string[] = [];
  async make(step: number, length: number, reason: PlanReason, detail = '') {
    const seq = this.planLength(length);
    this.made.push([step, reason, this.budget]);
    this.details.push(detail);
    this.current = { predictedPeakBytes: Math.min(this.budget, 100 * seq), seq };
    return this.current;
  }
  engineOptions(): ReplanOptions {
    return { mode: 'segmented' };
  }
}

describe('Replanner', () => {
  it('re-plans on a new sequence length, on an overshoot past 5%, and retries a step after out of memory', async () => {
    const p = new FakePlanner(10_000);
    const replans: ReplanOptions[] = [];
    const engine = { replan: (o: ReplanOptions) => replans.push(o), updatesThisStep: 0 };
    await p.make(1, 64, 'start');
    await p.beforeStep(engine, 2, 64);
    expect(replans).toHaveLength(0);
    await p.beforeStep(engine, 3, 80); // 8,000 predicted
    expect(p.made.at(-1)).toEqual([3, 'sequence-length', 10_000]);
    await p.afterStep(engine, stepResultPeaking(8_000 * 1.04), 4); // within the margin
    expect(p.made).toHaveLength(2);
    await p.afterStep(engine, stepResultPeaking(8_000 + 1_000), 4); // 1,000 over: the budget falls by it
    expect(p.made.at(-1)).toEqual([4, 'measured-peak', 9_000]);
    let calls = 0;
    const r = await p.guard(engine, 5, async () => {
      if (++calls === 1) throw new Error('out of GPU memory');
      return stepResultPeaking(1);
    });
    expect(r.peakBytes).toBe(1);
    expect(calls).toBe(2);
    expect(p.made.at(-1)).toEqual([5, 'out-of-memory', 8_000 * OOM_SHRINK]);
    expect(replans).toHaveLength(3);
  });

  it('does not retry an out-of-memory error once parameters were updated, nor other errors', async () => {
    const p = new FakePlanner(10_000);
    await p.make(1, 64, 'start');
    const oom = async (): Promise<StepResult> => {
      throw new Error('out of memory');
    };
    const updated = { replan: () => {}, updatesThisStep: 3 };
    await expect(p.guard(updated, 2, oom)).rejects.toThrow(/after 3 parameter updates/);
    const fresh = { replan: () => {}, updatesThisStep: 0 };
    await expect(
      p.guard(fresh, 2, async () => {
        throw new Error('loss is NaN');
      }),
    ).rejects.toThrow('loss is NaN');
  });
});

describe('length buckets (packed variable-length batches)', () => {
  it('plans once per bucket, for its longest length, and re-plans when a batch falls in another bucket', async () => {
    const p = new FakePlanner(1e9, [128, 256, 512]);
    const replans: ReplanOptions[] = [];
    const engine = { replan: (o: ReplanOptions) => replans.push(o), updatesThisStep: 0 };
    await p.make(1, 100, 'start');
    expect(p.current!.seq).toBe(128);
    // Lengths of packed batches, step by step; the plan's length is the top of each one's bucket.
    const lengths = [97, 128, 130, 200, 60, 511, 700];
    for (const [i, t] of lengths.entries()) await p.beforeStep(engine, i + 2, t);
    expect(p.made.map(([step, reason]) => [step, reason])).toEqual([
      [1, 'start'],
      [4, 'length-bucket'], // 130: bucket ≤ 256
      [6, 'length-bucket'], // 60: back to ≤ 128
      [7, 'length-bucket'], // 511: ≤ 512
      [8, 'length-bucket'], // 700: past the last bucket, its own length
    ]);
    expect(p.details.slice(1)).toEqual([
      'seq 130: bucket ≤ 256 (was ≤ 128)',
      'seq 60: bucket ≤ 128 (was ≤ 256)',
      'seq 511: bucket ≤ 512 (was ≤ 128)',
      'seq 700: bucket ≤ 700 (was ≤ 512)',
    ]);
    expect(p.current!.seq).toBe(700);
    expect(replans).toHaveLength(4);
    // Without buckets: a plan per exact length, as before.
    const exact = new FakePlanner(1e9);
    await exact.make(1, 100, 'start');
    await exact.beforeStep(engine, 2, 101);
    expect(exact.made.at(-1)!.slice(0, 2)).toEqual([2, 'sequence-length']);
    expect(exact.details.at(-1)).toBe('seq 100 → 101');
    expect(() => new FakePlanner(1, [128, 64])).toThrow(
      /bucket 64 is not an integer above the one before it/,
    );
  });
});

describe('planner inputs', () => {
  it('auto budget: free memory minus 10%, at most the cap', () => {
    expect(autoBudget(1000)).toBe(900);
    expect(autoBudget(16 * 2 ** 30, 4 * 2 ** 30)).toBe(Math.floor(4 * 2 ** 30 * 0.9));
  });

  it('recognises out-of-memory errors', () => {
    expect(isOutOfMemory(new Error('step 3: out of GPU memory: buffer too large'))).toBe(true);
    expect(isOutOfMemory(new RangeError('Array buffer allocation failed'))).toBe(true);
    expect(isOutOfMemory(new Error('loss is NaN'))).toBe(false);
  });

  it('a pinned plan narrows every slot to its label, and names a label that is not an option', () => {
    const slots = ['a', 'b'].map((name) => ({ name, options: [{ label: 'x' }, { label: 'y' }] }));
    const problem = {
      slots,
      budget: 10,
      evaluate: (a: readonly { label: string }[]) => ({ bytes: 1, ms: a.length }),
    };
    const solved = solveExhaustive(pinProblem(problem, ['y', 'x']));
    expect(solved.assignment.map((o) => o.label)).toEqual(['y', 'x']);
    expect(solved.evaluated).toBe(1);
    expect(() => pinProblem(problem, ['y'])).toThrow(/1 choices for 2 slots/);
    expect(() => pinProblem(problem, ['y', 'z'])).toThrow(/'z' is not an option of b: use one of x, y/);
  });
});
