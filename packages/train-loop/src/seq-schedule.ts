/** A sequence-length schedule: length `seq` for `steps` steps, in order; the last length holds after. */
export type SeqSchedule = ReadonlyArray<{ seq: number; steps: number }>;

/** The sequence length of `step` (1-based) under `schedule`. */
export function seqAt(schedule: SeqSchedule, step: number): number {
  let end = 0;
  for (const s of schedule) {
    end += s.steps;
    if (step <= end) return s.seq;
  }
  return schedule[schedule.length - 1]!.seq;
}
