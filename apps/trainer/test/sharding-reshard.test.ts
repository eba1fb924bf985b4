import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const node = [process.execPath, '--conditions=@kstar/source', '--import', 'tsx'];
const hasMpirun = spawnSync('mpirun', ['--version']).status === 0;

/** `mpirun -np N kstar …` (np 0: one process without mpirun); resolves with the exit code and the output. */
function kstar(np: number, args: string[]): Promise<{ code: number | null; out: string }> {
  const [cmd, ...pre] =
    np === 0 ? node : ['mpirun', '--allow-run-as-root', '--oversubscribe', '-np', String(np), ...node];
  return new Promise((resolve) => {
    const child = spawn(cmd!, [...pre, bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe.skipIf(!hasMpirun)('ZeRO checkpoints resume at another rank count (re-partitioned)', () => {
  it('zero3, adam8bit + split24: 2 ranks → 3 ranks and → 1 process, 3 → 2, and 1 process → 3 ranks continue the uninterrupted losses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kstar-reshard-'));
    const report = (name: string) => ['--report', join(dir, `${name}.json`)];
    const losses = (name: string) =>
      JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')).losses as number[];
    const saveTo = (name: string) => ['--save-dir', join(dir, name), '--save-every', '1', '--keep', '4'];
    // adam8bit's codes + block absmax and split24's words: both packed, both must be cut and joined exactly.
    // --batch 6: the global batch splits over 1, 2 and 3 ranks.
    const run = 'train --backend cpu --seq 16 --batch 6 --steps 4 --eval-every 0 --sample-tokens 0';
    const packed = '--optimizer adam8bit --master-weights split24 --sharding zero3';
    const whole = await kstar(2, [...`${run} ${packed}`.split(' '), ...saveTo('two'), ...report('two')]);
    expect(whole.code, whole.out).toBe(0);
    const want = losses('two');
    expect(want).toHaveLength(4);
    const at = (save: string, step: number) => ['train', '--resume', join(dir, save, `step-0000000${step}`)];
    // From step 2: at 3 ranks, and in one process without mpirun or sharding (each saving step 3 for the next pair).
    const [three, one] = await Promise.all([
      kstar(3, [...at('two', 2), ...saveTo('three'), ...report('three')]),
      kstar(0, [...at('two', 2), '--sharding', 'none', ...saveTo('one'), ...report('one')]),
    ]);
    expect(three.code, three.out).toBe(0);
    expect(three.out).toMatch(/re-partitioned from 2 ranks zero3 to 3 ranks zero3/);
    expect(one.code, one.out).toBe(0);
    expect(one.out).toMatch(/re-partitioned from 2 ranks zero3 to 1 rank\b/);
    // From step 3: the 3-rank checkpoint at 2 ranks, and the single process's checkpoint at 3 ranks under zero3.
    const [back, up] = await Promise.all([
      kstar(2, [...at('three', 3), ...report('back')]),
      kstar(3, [...at('one', 3), '--sharding', 'zero3', ...report('up')]),
    ]);
    expect(back.code, back.out).toBe(0);
    expect(up.code, up.out).toBe(0);
    // Not bit for bit: another rank count averages each gradient over ranks (and each rank's loss over its rows) in
    // another order, so float32 sums differ in their last bits (the 2-rank run and one process agree to ~1e-7 on tiny).
    // 1e-5 relative is far below what a lost correction word, a misplaced 8-bit block or a shifted row range does to
    // step 3-4's loss (tiny's loss moves by ~1e-1 a step; a re-initialised state changes it by > 1e-3).
    const close = (name: string, got: number[], from: number) =>
      got.forEach((l, i) => {
        const ref = want[from + i]!;
        expect(Math.abs(l - ref) / ref, `${name}, step ${from + i + 1}: ${l} vs ${ref}`).toBeLessThan(1e-5);
      });
    // A resumed report's losses are the steps it trained.
    expect(losses('three')).toHaveLength(2);
    close('2 → 3 ranks', losses('three'), 2);
    close('2 ranks → 1 process', losses('one'), 2);
    expect(losses('up')).toHaveLength(1);
    close('3 → 2 ranks', losses('back'), 3);
    close('1 process → 3 ranks', losses('up'), 3);
  }, 600_000);
});
