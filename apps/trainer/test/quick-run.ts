// The CLI flags of the short cpu runs that tests and scripts share (no vitest here: scripts import it too).

/** The `tiny` preset on cpu, 2 rows of 16 tokens, no validation (the closing sample stays on). */
export const CPU_RUN = ['--backend', 'cpu', '--batch', '2', '--seq', '16', '--eval-every', '0'];

/** CPU_RUN with no closing sample either: a quick whole run. */
export const QUICK_RUN = [...CPU_RUN, '--sample-tokens', '0'];

/** `--save-dir DIR --save-every N`, with `--keep K` when given: a run that checkpoints. */
export const saveEvery = (saveDir: string, every: number, keep?: number): string[] => [
  '--save-dir',
  saveDir,
  '--save-every',
  String(every),
  ...(keep === undefined ? [] : ['--keep', String(keep)]),
];
