import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBench } from '../src/index.ts';

const io = {
  stdout: { write: () => true },
  stderr: { write: () => true, isTTY: false },
};
const dir = mkdtempSync(join(tmpdir(), 'kstar-bench-act-'));

describe('pnpm bench activations (tiny, wasm)', () => {
  it('writes one row per strategy and T with measured and predicted bytes', async () => {
    const file = join(dir, 'rows.json');
    const code = await runBench(
      ['activations', '--preset', 'tiny', '--seq', '24', '--steps', '1', '--batch', '1'].concat([
        '--strategies',
        'baseline,checkpoint+mst+compress',
        '--json',
        file,
      ]),
      io,
    );
    expect(code).toBe(0);
    const out = JSON.parse(readFileSync(file, 'utf8'));
    expect(out.complete).toBe(true);
    expect(out.rows.map((r: { strategy: string }) => r.strategy)).toEqual([
      'baseline',
      'checkpoint+mst+compress',
    ]);
    for (const r of out.rows) {
      expect(r.seq).toBe(24);
      expect(r.activationPeakBytes).toBeGreaterThan(0);
      expect(r.predictedPeakBytes).toBeGreaterThan(0);
      expect(Number.isFinite(r.loss)).toBe(true);
    }
    // Same model, same batch: the exact strategies' loss equals the baseline's (int8 compression does not touch it).
    expect(Math.abs(out.rows[1].loss - out.rows[0].loss)).toBeLessThan(1e-5);
    expect(out.rows[1].activationPeakBytes).toBeLessThan(out.rows[0].activationPeakBytes);
  });

  it('--max-seq: the longest T whose prediction fits, verified by a measured step under the budget', async () => {
    const file = join(dir, 'max.json');
    const budget = 14 * 2 ** 20;
    const code = await runBench(
      ['activations', '--max-seq', '--memory-budget', String(budget), '--preset', 'tiny'].concat([
        ...['--batch', '1', '--steps', '1', '--max', '256', '--strategies', 'baseline,checkpoint+mst'],
        ...['--json', file],
      ]),
      io,
    );
    expect(code).toBe(0);
    const out = JSON.parse(readFileSync(file, 'utf8'));
    const [base, ck] = out.search;
    expect(base.maxSeqPredicted).toBeGreaterThan(0);
    expect(ck.maxSeqPredicted).toBeGreaterThan(base.maxSeqPredicted);
    for (const s of out.search) {
      if (s.maxSeqVerified !== null) expect(s.verifiedRun.peakBytes).toBeLessThanOrEqual(budget);
    }
    expect(out.atBaselineSeq.rows.length).toBe(2);
  });
});
