// Packs every published workspace package (packages/*, apps/*) into one directory, as `pnpm publish` would ship
// them (workspace: ranges resolved). Needs `pnpm build` first. Used by scripts/check-packages.mjs and the
// install test (apps/trainer/test/packed-install.test.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Packs every public package into `dest`; returns the tarball paths by package name. */
export function packPackages(dest) {
  mkdirSync(dest, { recursive: true });
  const missing = publicPackageDirs().filter((dir) => !existsSync(join(repoRoot, dir, 'dist', 'index.js')));
  if (missing.length > 0) {
    throw new Error(`no build output in ${missing.join(', ')}: run 'pnpm build' before packing`);
  }
  execFileSync(
    'pnpm',
    ['-r', '--filter', './packages/*', '--filter', './apps/*', 'pack', '--pack-destination', dest],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  // `pnpm -r pack` packs private workspace packages (apps/web) despite the filters: drop those tarballs.
  const published = new Set(
    publicPackageDirs().map(
      (dir) => JSON.parse(readFileSync(join(repoRoot, dir, 'package.json'), 'utf8')).name,
    ),
  );
  const tarballs = {};
  for (const file of readdirSync(dest).filter((f) => f.endsWith('.tgz'))) {
    const name = file.replace(/^kstar-(.*)-\d+\.\d+\.\d+.*\.tgz$/, '@kstar/$1');
    if (published.has(name)) tarballs[name] = join(dest, file);
    else rmSync(join(dest, file));
  }
  return tarballs;
}

/** Workspace packages that are published (not `private`, like apps/web). */
export function publicPackageDirs() {
  return ['packages', 'apps']
    .flatMap((group) => readdirSync(join(repoRoot, group)).map((name) => `${group}/${name}`))
    .filter((dir) => !JSON.parse(readFileSync(join(repoRoot, dir, 'package.json'), 'utf8')).private);
}
