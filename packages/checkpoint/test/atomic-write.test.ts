import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { writeFileAtomic } from '../src/atomic-write.ts';

const writer = fileURLToPath(new URL('../src/atomic-write.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kstar-atomic-'));

const report = (writerName: string, i: number) =>
  `${JSON.stringify({ writer: writerName, i, losses: Array.from({ length: 50_000 }, (_, k) => k / 7) })}\n`;

/** A node process (tsx, like the CLI) running `body` as an ES module with `writeFileAtomic` imported. */
function node(body: string) {
  const code = `import { writeFileAtomic } from ${JSON.stringify(writer)};\nconst report = ${report.toString()};\n${body}`;
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

it('kill -9 in the middle of a write leaves the previous report intact', async () => {
  const path = join(dir, 'report.json');
  const previous = report('previous', 0);
  writeFileAtomic(path, previous);
  // The child writes the next report one 4 KiB block at a time and hangs after the first block: it is killed there.
  const child = node(`
    import fs from 'node:fs';
    import { syncBuiltinESMExports } from 'node:module';
    const write = fs.writeSync;
    let calls = 0;
    fs.writeSync = (fd, buffer, offset, length) => {
      const n = write(fd, buffer, offset, Math.min(length, 4096));
      if (++calls === 1) {
        write(1, 'half-written\\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
      }
      return n;
    };
    syncBuiltinESMExports();
    writeFileAtomic(${JSON.stringify(path)}, report('next', 1));
  `);
  const killed = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_c, s) => resolve(s)));
  let stdout = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    if (stdout.includes('half-written')) child.kill('SIGKILL');
  });
  expect(await killed).toBe('SIGKILL');
  expect(stdout).toContain('half-written'); // the kill did land inside the write
  expect(readFileSync(path, 'utf8')).toBe(previous);
  // Only the dead writer's temporary file is left beside it (the next write to the path does not need it).
  expect(readdirSync(dir).filter((f) => f !== 'report.json')).toHaveLength(1);
}, 60_000);

it('two processes writing one path: every read is valid JSON from one of them', async () => {
  const path = join(dir, 'shared.json');
  writeFileSync(path, report('start', 0));
  const writers = ['a', 'b'].map((name) =>
    node(`for (let i = 0; i < 40; i++) writeFileAtomic(${JSON.stringify(path)}, report('${name}', i));`),
  );
  const done = Promise.all(writers.map((w) => new Promise((resolve) => w.on('close', resolve))));
  let running = true;
  void done.then(() => {
    running = false;
  });
  const seen = new Set<string>();
  let reads = 0;
  while (running) {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { writer: string; losses: number[] };
    expect(parsed.losses).toHaveLength(50_000);
    seen.add(parsed.writer);
    reads++;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  expect(reads).toBeGreaterThan(5);
  expect(['a', 'b']).toContain((JSON.parse(readFileSync(path, 'utf8')) as { writer: string }).writer);
  expect([...seen].every((w) => ['start', 'a', 'b'].includes(w))).toBe(true);
}, 120_000);
