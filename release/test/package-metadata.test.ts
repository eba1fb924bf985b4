import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const rootLicense = readFileSync(join(repoRoot, 'LICENSE'), 'utf8');

interface Manifest {
  name: string;
  private?: boolean;
  license: string;
  repository?: { url: string; directory: string };
  homepage?: string;
  bugs?: { url: string };
  engines?: { node: string };
  types?: string;
  sideEffects: boolean | string[];
  exports: Record<string, unknown>;
  files: string[];
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const published = ['packages', 'apps']
  .flatMap((group) => readdirSync(join(repoRoot, group)).map((name) => `${group}/${name}`))
  .map((dir) => ({
    dir,
    manifest: JSON.parse(readFileSync(join(repoRoot, dir, 'package.json'), 'utf8')) as Manifest,
  }))
  .filter(({ manifest }) => !manifest.private);

/** Source files that register something with tfjs when they are imported (a bundler must keep them). */
function registeringFiles(dir: string): string[] {
  const src = join(repoRoot, dir, 'src');
  // Every source file, folders included (the trainer keeps its checkpoint format in src/checkpoint/).
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((file) =>
    file.endsWith('.ts'),
  );
  // A top-level registerClass call, or a top-level class made by core's dropInOptimizerClass (which registers it).
  return files.filter((file) =>
    /^(tf\.serialization\.registerClass\(|serialization\.registerClass\(|registerClass\(|export const \w+ = dropInOptimizerClass\()/m.test(
      readFileSync(join(src, file), 'utf8'),
    ),
  );
}

/** The exact version every package pins @tensorflow/tfjs-backend-wasm to. */
const pinnedTfjs = JSON.parse(readFileSync(join(repoRoot, 'packages/kernels/package.json'), 'utf8'))
  .dependencies['@tensorflow/tfjs-backend-wasm'] as string;

describe.each(published)('$dir', ({ dir, manifest }) => {
  it('ships the MIT LICENSE it declares', () => {
    expect(manifest.license).toBe('MIT');
    expect(readFileSync(join(repoRoot, dir, 'LICENSE'), 'utf8')).toBe(rootLicense);
    expect(manifest.files).toContain('LICENSE');
  });

  it('says where it lives, where to report bugs and which Node it needs', () => {
    expect(manifest.repository?.directory).toBe(dir);
    expect(manifest.repository?.url).toMatch(/^git\+https:\/\/.+\.git$/);
    expect(manifest.homepage).toContain(dir);
    expect(manifest.bugs?.url).toMatch(/^https:\/\//);
    expect(manifest.engines?.node).toMatch(/^>=20/);
  });

  it('exports ./package.json and top-level types for TypeScript that ignores exports', () => {
    expect(manifest.exports['./package.json']).toBe('./package.json');
    expect(manifest.types).toBe('./dist/index.d.ts');
  });

  it('lists every module that registers a class in sideEffects', () => {
    const registering = registeringFiles(dir);
    for (const file of registering) {
      expect(manifest.sideEffects, `${dir}/src/${file} registers a class at import`).toEqual(
        expect.arrayContaining([`./src/${file}`, `./dist/${file.replace(/\.ts$/, '.js')}`]),
      );
    }
    if (registering.length === 0 && dir !== 'packages/kernels') expect(manifest.sideEffects).toBe(false);
  });

  it('peer-depends on exactly the tfjs-core its pinned backends need, and on 0.x of core and kernels', () => {
    const peers = manifest.peerDependencies ?? {};
    if (peers['@tensorflow/tfjs-core']) expect(peers['@tensorflow/tfjs-core']).toBe(pinnedTfjs);
    for (const name of ['@kstar/core', '@kstar/kernels']) {
      if (peers[name]) expect(peers[name]).toBe('>=0.1.0 <1.0.0');
    }
  });

  it('leaves native WebGPU (Dawn) to users who want it', () => {
    expect(manifest.dependencies?.webgpu).toBeUndefined();
    if (peers(manifest).webgpu) expect(manifest.peerDependenciesMeta?.webgpu?.optional).toBe(true);
  });
});

function peers(manifest: Manifest): Record<string, string> {
  return manifest.peerDependencies ?? {};
}

describe('declaration files', () => {
  it.each(published)('$dir: emitted .d.ts import .js paths, never .ts', ({ dir }) => {
    const dist = join(repoRoot, dir, 'dist');
    if (!existsSync(dist)) throw new Error(`${dir}/dist does not exist: run 'pnpm build' first`);
    const offenders = readdirSync(dist)
      .filter((file) => file.endsWith('.d.ts'))
      .filter((file) => /from\s+['"]\.{1,2}\/[^'"]+\.ts['"]/.test(readFileSync(join(dist, file), 'utf8')));
    expect(offenders).toEqual([]);
  });
});
