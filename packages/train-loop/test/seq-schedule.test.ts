import { expect, it } from 'vitest';
import { seqAt } from '../src/index.ts';

it('gives each step the length of the schedule item it falls in, and the last one after the end', () => {
  const schedule = [
    { seq: 64, steps: 2 },
    { seq: 128, steps: 1 },
    { seq: 256, steps: 3 },
  ];
  // Reference: the schedule unrolled step by step (steps 1 … 6), then the last length.
  const unrolled = schedule.flatMap((s) => Array<number>(s.steps).fill(s.seq));
  const steps = [1, 2, 3, 4, 5, 6, 7, 50];
  expect(steps.map((k) => seqAt(schedule, k))).toEqual(steps.map((k) => unrolled[k - 1] ?? 256));
});
