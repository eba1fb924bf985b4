import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBench } from '../src/index.ts';

const err: string[] = [];
const io = {
  stdout: { write: () => true },
  stderr: {
    write: (s: string) => {
      err.push(s);
      return true;
    },
    isTTY: false,
  },
};
const dir = mkdtempSync(join(tmpdir(), 'kstar-bench-matmul-'));

describe('pnpm bench matmul', () => {
  it('bad flags exit 2 naming the value', async () => {
    err.length = 0;
    expect(await runBench(['matmul', '--json', join(dir, 'x.json'), '--reps', '0'], io)).toBe(2);
    expect(err.join('')).toContain("'0'");
    err.length = 0;
    expect(await runBench(['matmul', '--json', join(dir, 'x.json'), '--choices', 'tfjs,fast'], io)).toBe(2);
    expect(err.join('')).toContain("'fast'");
    err.length = 0;
    expect(await runBench(['matmul', '--json', join(dir, 'x.json'), '--passes', '1.5'], io)).toBe(2);
    expect(err.join('')).toContain("--passes must be a positive integer (got '1.5')");
    err.length = 0;
    expect(await runBench(['matmul', '--json', join(dir, 'x.json'), '--choices', 'kstar-f16-huge'], io)).toBe(
      2,
    );
    expect(err.join('')).toContain("'kstar-f16-huge'");
  });

  const skip = process.env.KSTAR_SKIP_WEBGPU === '1';
  it.skipIf(skip)('times odd shapes per kernel choice on WebGPU (lavapipe) and checks parity', async () => {
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    process.env.VK_DRIVER_FILES ??= '/usr/share/vulkan/icd.d/lvp_icd.json';
    const file = join(dir, 'odd.json');
    const args = ['matmul', '--json', file, '--shapes', 'odd', '--reps', '1', '--choices', 'tfjs,kstar'];
    expect(await runBench(args, io)).toBe(0);
    const out = JSON.parse(readFileSync(file, 'utf8'));
    expect(out.allPass).toBe(true);
    expect(out.parity.length).toBeGreaterThan(30);
    expect(out.rows.length).toBe(12); // 6 products × 2 choices
    for (const r of out.rows) {
      expect(r.ms).toBeGreaterThan(0);
      expect(r.tflops).toBeGreaterThan(0);
      expect(r.auto).toBe('small'); // small outputs: no tile fills 264 workgroups
    }
  });
});
