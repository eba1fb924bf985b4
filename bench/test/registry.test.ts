import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BENCHMARKS, runBench } from '../src/index.ts';

async function bench(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runBench(args, {
    stdout: { write: (s: string) => out.push(s) > 0 },
    stderr: { write: (s: string) => err.push(s) > 0, isTTY: false },
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('pnpm bench: the registry', () => {
  it("--help lists every benchmark's usage line; NAME --help prints that benchmark's help", async () => {
    const names = Object.keys(BENCHMARKS);
    expect(names.length).toBeGreaterThanOrEqual(15);
    const all = await bench(['--help']);
    expect(all.code).toBe(0);
    for (const name of names) {
      expect(BENCHMARKS[name]!.help.startsWith(`pnpm bench ${name} `), name).toBe(true);
      expect(all.stdout).toContain(BENCHMARKS[name]!.help.split('\n')[0]);
      const one = await bench([name, '--help']);
      expect(one).toEqual({ code: 0, stdout: BENCHMARKS[name]!.help, stderr: '' });
    }
  });

  it('an unknown name and an unwritable --json are refused before anything runs, naming the value', async () => {
    const unknown = await bench(['trian']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      `kstar bench: unknown benchmark 'trian': use ${Object.keys(BENCHMARKS).join(', ')} (see 'pnpm bench --help')\n`,
    );
    const dir = mkdtempSync(join(tmpdir(), 'kstar-bench-registry-'));
    const missing = await bench(['train', '--json', join(dir, 'no/such/dir.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--json '.*no\/such\/dir\.json': directory '.*no\/such' does not exist/);
    expect(missing.stdout).toBe('');
  });
});
