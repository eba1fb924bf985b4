import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import type { ReplayOutput } from '../src/index.ts';
import { compareReplay, readGolden, runCli } from '../src/index.ts';

// Golden trajectories from the reference implementations (see fixtures/golden/PROVENANCE.md).
const goldenPath = fileURLToPath(new URL('../../../fixtures/golden/optimizers.json', import.meta.url));

it('kstar replay matches the golden adamw run within 1e-5 of each parameter RMS at every recorded step', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'kstar-replay-')), 'replay.json');
  const lines: string[] = [];
  const io = { stdout: { write: (s: string) => lines.push(s) > 0 }, stderr: { write: () => true } };
  expect(await runCli(['replay', '--golden', goldenPath, '--out', out], io)).toBe(0);
  const golden = readGolden(goldenPath);
  const output = JSON.parse(readFileSync(out, 'utf8')) as ReplayOutput;
  const adamw = output.runs.find((r) => r.optimizer === 'adamw');
  expect(adamw?.index).toBe(0);
  expect(adamw?.after.map((a) => a.step)).toEqual([1, 2, 5, 10]);
  const rows = compareReplay(golden, output).filter((r) => r.index === 0);
  expect(rows.map((r) => r.param).sort()).toEqual(['E', 'T', 'W', 'b']);
  for (const row of rows) expect(row.relError, row.param).toBeLessThanOrEqual(1e-5);
  // Every run is either replayed or listed as skipped with a reason.
  expect(output.runs.length + output.skipped.length).toBe(golden.runs.length);
  for (const s of output.skipped) expect(s.reason).toMatch(/no optimizer|K\*/);
});
