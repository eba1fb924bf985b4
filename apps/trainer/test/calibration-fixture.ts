import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineInfo } from '../src/machine.ts';

/**
 * Points the calibration cache (`KSTAR_CALIBRATION_CACHE`) at `dir` and fills it with the op times of
 * `fixtures/NAME` (measured once; keys without the machine prefix, this machine's added): the planner then reads
 * those costs instead of measuring, so it picks the same plans on every run and every machine.
 */
export function useCalibrationFixture(dir: string, name: string): void {
  const fixture = JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));
  const m = machineInfo();
  const entries = Object.fromEntries(
    Object.entries(fixture.entries as Record<string, number>).map(([k, v]) => [
      `${m.cpuModel} ×${m.cpus}|${k}`,
      v,
    ]),
  );
  process.env.KSTAR_CALIBRATION_CACHE = join(dir, 'calibration.json');
  writeFileSync(
    process.env.KSTAR_CALIBRATION_CACHE,
    JSON.stringify({ version: fixture.version ?? 1, entries }),
  );
}
