import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packPackages } from '../../scripts/pack-packages.mjs';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const userScripts = fileURLToPath(new URL('../user/', import.meta.url));
const project = mkdtempSync(join(tmpdir(), 'kstar-user-'));

/** Runs a user script with plain Node in the temporary project (no tsx, no K* sources). */
function node(args: string[]): string {
  const run = spawnSync(process.execPath, args, { cwd: project, encoding: 'utf8', timeout: 300_000 });
  if (run.status !== 0) throw new Error(`node ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return run.stdout;
}

function directoryBytes(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((sum, entry) => {
    const path = join(dir, entry.name);
    return sum + (entry.isDirectory() ? directoryBytes(path) : statSync(path).size);
  }, 0);
}

type Continued = Record<string, { maxDiff?: number; restartedMaxDiff?: number; error?: string }>;
const OPTIMIZERS = ['Lion', 'AdamW', 'Adam8bit', 'Adafactor', 'CAME'];

// One npm install of every packed package beside @tensorflow/tfjs, reused by every user script below.
beforeAll(() => {
  const tarballs = packPackages(join(project, 'tarballs'));
  const dependencies: Record<string, string> = { '@tensorflow/tfjs': '4.22.0' };
  for (const [name, tarball] of Object.entries(tarballs)) dependencies[name] = `file:${tarball}`;
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'kstar-user', private: true, type: 'module', dependencies }, null, 2),
  );
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], {
    cwd: project,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  cpSync(userScripts, project, { recursive: true });
}, 600_000);

afterAll(() => rmSync(project, { recursive: true, force: true }), 120_000);

describe('packed packages installed with npm into an empty project', () => {
  it('pull no WebGPU/Dawn binary, and one optimizer brings under 5 MB of K* code', () => {
    expect(existsSync(join(project, 'node_modules/webgpu'))).toBe(false);
    const optimizerBytes = ['core', 'kernels', 'optim-lion']
      .map((name) => directoryBytes(join(project, 'node_modules/@kstar', name)))
      .reduce((a, b) => a + b, 0);
    expect(optimizerBytes).toBeGreaterThan(0);
    expect(optimizerBytes).toBeLessThan(5 * 1024 * 1024);
  });

  let sameProcess: Continued;
  it('tfjs-layers: compile/fit, save with includeOptimizer, and continue exactly in the same process', () => {
    sameProcess = JSON.parse(node(['layers-continue.mjs', 'save', 'saved'])) as Continued;
    const control = sameProcess['tf.train.adam']!;
    expect(control.error).toBeUndefined();
    expect(control.maxDiff).toBeLessThanOrEqual(1e-6); // the harness: tfjs's own optimizer continues exactly
    const failures: string[] = [];
    for (const name of OPTIMIZERS) {
      const r = sameProcess[name]!;
      expect(
        r.restartedMaxDiff ?? 1,
        `${name}: a restarted optimizer must be distinguishable`,
      ).toBeGreaterThan(1e-4);
      if (r.error !== undefined || !(r.maxDiff! <= 1e-6))
        failures.push(`${name}: ${r.error ?? `max |Δw| ${r.maxDiff}`}`);
    }
    expect(failures).toEqual([]);
  });

  it('tfjs-layers: continue exactly from the saved model in a new process', () => {
    const resumed = JSON.parse(node(['layers-continue.mjs', 'resume', 'saved'])) as Continued;
    const failures: string[] = [];
    for (const name of [...OPTIMIZERS, 'tf.train.adam']) {
      const r = resumed[name]!;
      if (r.error !== undefined || !(r.maxDiff! <= 1e-6))
        failures.push(`${name}: ${r.error ?? `max |Δw| ${r.maxDiff}`}`);
    }
    expect(failures).toEqual([]);
  });

  it('LOMO through the engine matches plain SGD from tf.grads', () => {
    const r = JSON.parse(node(['lomo-engine.mjs'])) as {
      losses: number[];
      refLosses: number[];
      maxDiff: number;
    };
    expect(r.maxDiff).toBeLessThan(1e-5);
    for (const [i, loss] of r.losses.entries()) expect(loss).toBeCloseTo(r.refLosses[i]!, 5);
    expect(r.losses.at(-1)!).toBeLessThan(r.losses[0]!);
  });

  it('the README examples (user/readme/, scripts/readme-examples.mjs) run against the published packages', () => {
    // tsx's loader only strips the types (tsc checks them below); imports resolve in the user's node_modules.
    const tsx = pathToFileURL(join(repoRoot, 'node_modules/tsx/dist/esm/index.mjs')).href;
    node(['--import', tsx, 'run-readme-examples.mjs']);
    const results = JSON.parse(readFileSync(join(project, 'readme-results.json'), 'utf8')) as Record<
      string,
      { seconds?: number; error?: string }
    >;
    const examples = readdirSync(join(userScripts, 'readme')).filter((f) => f.endsWith('.ts'));
    const typeCheckedOnly = examples.filter((f) =>
      /^\/\/ type-checked only:/m.test(readFileSync(join(userScripts, 'readme', f), 'utf8')),
    );
    expect(Object.keys(results).sort()).toEqual(examples.filter((f) => !typeCheckedOnly.includes(f)).sort());
    const failures = Object.entries(results).flatMap(([f, r]) => (r.error ? [`${f}: ${r.error}`] : []));
    expect(failures).toEqual([]);
  });

  it('a TypeScript file and the README examples type-check against the published declarations', () => {
    const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
    const run = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8' });
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('the installed kstar CLI loads a .ts config', () => {
    const bin = join(project, 'node_modules/.bin/kstar');
    const run = spawnSync(bin, ['train', '--config', 'kstar.config.ts', '--report', 'report.json'], {
      cwd: project,
      encoding: 'utf8',
      env: { ...process.env, CI: 'true' },
      timeout: 300_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(project, 'report.json'), 'utf8'));
    expect(report.steps).toBe(2);
    expect(report.config.seq).toBe(16); // from the .ts file
  });
});
