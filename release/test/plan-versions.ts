import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Runs `changeset version` for one changeset in a temporary copy of the workspace manifests (no sources, no
 * pending changesets); returns the version of every package that changed, by name. */
export function planVersions(
  repoRoot: string,
  bumps: Record<string, 'patch' | 'minor'>,
): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'kstar-plan-'));
  try {
    for (const file of ['package.json', 'pnpm-workspace.yaml', '.changeset/config.json']) {
      mkdirSync(join(dir, file, '..'), { recursive: true });
      cpSync(join(repoRoot, file), join(dir, file));
    }
    const before: Record<string, string> = {};
    for (const group of ['packages', 'apps']) {
      for (const name of readdirSync(join(repoRoot, group))) {
        const manifest = join(group, name, 'package.json');
        mkdirSync(join(dir, group, name), { recursive: true });
        cpSync(join(repoRoot, manifest), join(dir, manifest));
        const json = JSON.parse(readFileSync(join(dir, manifest), 'utf8')) as {
          name: string;
          version: string;
        };
        before[manifest] = json.version;
      }
    }
    const front = Object.entries(bumps)
      .map(([name, type]) => `"${name}": ${type}`)
      .join('\n');
    writeFileSync(join(dir, '.changeset/scenario.md'), `---\n${front}\n---\n\nA scenario.\n`);
    execFileSync(join(repoRoot, 'node_modules/.bin/changeset'), ['version'], { cwd: dir, stdio: 'pipe' });
    const changed: Record<string, string> = {};
    for (const [manifest, version] of Object.entries(before)) {
      const json = JSON.parse(readFileSync(join(dir, manifest), 'utf8')) as { name: string; version: string };
      if (json.version !== version) changed[json.name] = json.version;
    }
    return changed;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
