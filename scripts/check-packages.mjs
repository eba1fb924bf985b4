// Packs every package and runs publint and @arethetypeswrong/cli on each tarball, as a user would receive it.
// Needs `pnpm build` first. Exits 1 naming every package that fails. ESM-only packages: attw's `esm-only`
// profile (CommonJS `require` and node10 resolution are out of scope; older TypeScript reads the top-level `types`).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packPackages, repoRoot } from './pack-packages.mjs';

const dest = mkdtempSync(join(tmpdir(), 'kstar-packs-'));
const failed = [];
try {
  const tarballs = packPackages(dest);
  for (const [name, tarball] of Object.entries(tarballs).sort()) {
    const checks = [
      ['publint', ['exec', 'publint', 'run', '--strict', tarball]],
      ['attw', ['exec', 'attw', tarball, '--profile', 'esm-only', '--format', 'ascii']],
    ];
    for (const [tool, args] of checks) {
      const run = spawnSync('pnpm', args, { cwd: repoRoot, encoding: 'utf8' });
      if (run.status !== 0) {
        failed.push(`${name} (${tool})`);
        console.log(`${run.stdout}\n${run.stderr}`);
      }
    }
    console.log(
      `${name}: ${failed.some((f) => f.startsWith(`${name} `)) ? 'FAILED' : 'publint and attw pass'}`,
    );
  }
} finally {
  rmSync(dest, { recursive: true, force: true });
}
if (failed.length > 0) {
  console.log(`package checks failed: ${failed.join(', ')}`);
  process.exit(1);
}
