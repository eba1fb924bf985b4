// What a user of one optimizer installs: packs every package, npm-installs @kstar/optim-lion (with its peers
// @kstar/core and @kstar/kernels) beside @tensorflow/tfjs into an empty project, and records the bytes of K* code,
// of everything installed, and whether a WebGPU/Dawn binary came along.
// usage: node --conditions=@kstar/source --import tsx scripts/measure-install.ts bench/results/2026-12-02-install-size.json
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machineInfo } from '../apps/trainer/src/machine.ts';
import { packPackages } from './pack-packages.mjs';

function directoryBytes(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((sum, entry) => {
    const path = join(dir, entry.name);
    return sum + (entry.isDirectory() ? directoryBytes(path) : statSync(path).size);
  }, 0);
}

const out = process.argv[2];
if (!out) {
  console.error('usage: measure-install.ts OUT.json');
  process.exit(2);
}
const project = mkdtempSync(join(tmpdir(), 'kstar-install-'));
try {
  const tarballs = packPackages(join(project, 'tarballs'));
  const installed = ['@kstar/optim-lion', '@kstar/core', '@kstar/kernels'];
  const dependencies: Record<string, string> = { '@tensorflow/tfjs': '4.22.0' };
  for (const name of installed) dependencies[name] = `file:${tarballs[name]}`;
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'one-optimizer', private: true, dependencies }),
  );
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], {
    cwd: project,
    stdio: 'inherit',
  });
  const kstarBytes = Object.fromEntries(
    installed.map((name) => [name, directoryBytes(join(project, 'node_modules', name))]),
  );
  const result = {
    what: 'npm install @kstar/optim-lion @kstar/core @kstar/kernels @tensorflow/tfjs@4.22.0 (packed tarballs) into an empty project',
    command: 'node --conditions=@kstar/source --import tsx scripts/measure-install.ts OUT.json',
    machine: { ...machineInfo(), note: '2-core x86-64, shared with parallel jobs' },
    kstarBytes,
    kstarTotalBytes: Object.values(kstarBytes).reduce((a, b) => a + b, 0),
    nodeModulesBytes: directoryBytes(join(project, 'node_modules')),
    webgpuInstalled: existsSync(join(project, 'node_modules/webgpu')),
  };
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
} finally {
  rmSync(project, { recursive: true, force: true });
}
