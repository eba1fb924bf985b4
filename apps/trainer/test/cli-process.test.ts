import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { TrainReport } from '../src/index.ts';
import { runProcess } from './cli-helpers.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kstar-proc-'));

/** Runs the real CLI in a child process (as `pnpm kstar` does). */
function kstar(args: string[], onStderr?: Parameters<typeof runProcess>[3]) {
  const argv = ['--conditions=@kstar/source', '--import', 'tsx', bin, ...args];
  return runProcess(process.execPath, argv, { cwd: root, env: { ...process.env, CI: 'true' } }, onStderr);
}

describe('kstar as a process', () => {
  const longRun = (report: string) => [
    'train',
    '--backend',
    'wasm',
    '--steps',
    '500',
    '--batch',
    '2',
    '--seq',
    '32',
    '--eval-every',
    '0',
    '--report',
    report,
  ];

  // SIGTERM is what `timeout`, `docker stop` and Kubernetes send; SIGHUP a closed terminal.
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)(
    '%s after step 1: the step finishes, the report is complete, exit %i',
    async (signal, exitCode) => {
      const report = join(dir, `${signal}.json`);
      let sent = false;
      const { code, stdout, stderr } = await kstar(longRun(report), (text, child) => {
        // The progress line of step 1 is printed; signal then.
        if (!sent && /step\s+1\/500/.test(text)) {
          sent = true;
          child.kill(signal);
        }
      });
      expect(sent).toBe(true);
      expect(code, stderr).toBe(exitCode);
      expect(stderr).toMatch(new RegExp(`stopped after step \\d+ \\(${signal}\\); writing the report`));
      const r = JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
      expect(r.stoppedEarly).toBe(true);
      expect(r.steps).toBeGreaterThanOrEqual(1);
      expect(r.steps).toBeLessThanOrEqual(2); // step 1, or step 2 if the signal landed while it ran
      expect(r.losses).toHaveLength(r.steps);
      expect(r.failed).toBeUndefined();
      expect(stdout).toMatch(/memory ledger/);
    },
  );

  it('a killed parent (pnpm kstar) does not leave the trainer running: it stops and writes the report', async () => {
    const report = join(dir, 'orphan.json');
    // A parent that starts kstar with inherited stderr (as pnpm does) and prints the child's pid.
    const parent = spawn(
      process.execPath,
      [
        '-e',
        `const c = require('node:child_process').spawn(process.execPath, ${JSON.stringify([
          '--conditions=@kstar/source',
          '--import',
          'tsx',
          bin,
          ...longRun(report),
        ])}, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CI: 'true' } });
        console.log(c.pid);`,
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let pid = 0;
    parent.stdout.on('data', (d) => {
      pid ||= Number(String(d).trim());
    });
    await new Promise<void>((resolve) => {
      let stderr = '';
      parent.stderr.on('data', (d) => {
        stderr += d;
        if (/step\s+1\/500/.test(stderr)) resolve();
      });
    });
    parent.kill('SIGKILL');
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const t0 = Date.now();
    while (alive() && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 200));
    expect(pid).toBeGreaterThan(0);
    expect(alive()).toBe(false);
    const r = JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
    expect(r.stoppedEarly).toBe(true);
    expect(r.steps).toBeGreaterThanOrEqual(1);
    expect(r.steps).toBeLessThan(500);
    expect(r.losses).toHaveLength(r.steps);
  });

  it('reads .ts config files, and flags override them', async () => {
    const config = join(dir, 'kstar.config.ts');
    writeFileSync(
      config,
      "export default { preset: 'tiny', steps: 3, batch: 2, seq: 16, evalEvery: 0, backend: 'wasm', mode: 'segmented' };\n",
    );
    const report = join(dir, 'config.json');
    const { code, stderr } = await kstar(['train', '--config', config, '--steps', '2', '--report', report]);
    expect(code, stderr).toBe(0);
    const r = JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
    expect(r.steps).toBe(2); // the flag wins over the file
    expect(r.config.mode).toBe('segmented');
    expect(r.config.seq).toBe(16);
  });

  it('bad input exits with code 2 and one line on stderr', async () => {
    const { code, stdout, stderr } = await kstar(['train', '--steps', '0']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/field 'steps'/);
  });
});
