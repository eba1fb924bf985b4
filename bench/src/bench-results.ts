import { machineInfo, writeFileAtomic } from '@kstar/trainer/internal';

/**
 * Writes a benchmark's results file, atomically as indented JSON: `{kind, date, machine, …fields}`. `machine` is
 * this machine's description unless `fields` brings its own (a GPU's name added, a note).
 */
export function writeBenchResults(file: string, kind: string, fields: Record<string, unknown>): void {
  const results = { kind, date: new Date().toISOString(), machine: machineInfo(), ...fields };
  writeFileAtomic(file, `${JSON.stringify(results, null, 2)}\n`);
}
