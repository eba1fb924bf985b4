import { InputError } from '@kstar/core';

/** `--seq-schedule 64:100,256:100`: sequence length T for STEPS steps, in order; the last one holds after. */
export function parseSeqSchedule(text: string): Array<{ seq: number; steps: number }> {
  const items = text.split(',').map((s) => s.trim());
  return items.map((item) => {
    const m = /^(\d+):(\d+)$/.exec(item);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
      throw new InputError(
        `--seq-schedule item '${item}' is not T:STEPS with positive integers: write e.g. 64:100,256:100`,
        'E_CONFIG',
      );
    }
    return { seq: Number(m[1]), steps: Number(m[2]) };
  });
}

/** The sequence length of `step` (1-based) under a schedule. */
export function seqAt(schedule: ReadonlyArray<{ seq: number; steps: number }>, step: number): number {
  let end = 0;
  for (const s of schedule) {
    end += s.steps;
    if (step <= end) return s.seq;
  }
  return schedule[schedule.length - 1]!.seq;
}
