import { machineInfo, writeFileAtomic } from '@kstar/trainer/internal';

/**
 * Writes a benchmark's results file, atomically as indented JSON: `{kind, date, machine, …fields}`. `machine` is
 * this machine's description unless `fields` brings its own (a GPU's name added, a note).
 */
export function writeBenchResults(file: string, kind: string, fields: Record<string, unknown>): void {
  const results = { kind, date: new Date().toISOString(), machine: machineInfo(), ...fields };
  writeFileAtomic(file, `${JSON.stringify(results, null, 2)}\n`);
}

/** The rows a benchmark measured and the results file it wrote them to. */
export interface BenchRows<R> {
  rows: R[];
  file: string;
}

/** A benchmark of `pnpm bench NAME`: the flags after NAME and where its progress goes (`L`); its rows and file. */
export type RowsBenchmark<R, L = (line: string) => void> = (argv: string[], log: L) => Promise<BenchRows<R>>;
