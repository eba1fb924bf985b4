import { InputError } from '@kstar/core';

/**
 * `--seq-schedule 64:100,256:100`: sequence length T for STEPS steps, in order; the last one holds after (a
 * `SeqSchedule` of @kstar/train-loop: `seqAt` reads it).
 */
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
