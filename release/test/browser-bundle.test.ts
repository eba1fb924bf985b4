import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Node only: @kstar/data reads corpora from the filesystem, the trainer is a CLI, @kstar/collective-mpi calls Open MPI
 * through a native FFI, @kstar/backend-cuda calls CUDA through it, @kstar/checkpoint writes directories with fsync and
 * rename. Every other package is for browsers too.
 */
const NODE_ONLY = new Set([
  '@kstar/data',
  '@kstar/trainer',
  '@kstar/collective-mpi',
  '@kstar/backend-cuda',
  '@kstar/checkpoint',
]);

const packages = readdirSync(join(repoRoot, 'packages'))
  .map((dir) => ({
    dir,
    name: JSON.parse(readFileSync(join(repoRoot, 'packages', dir, 'package.json'), 'utf8')).name as string,
  }))
  .filter(({ name }) => !NODE_ONLY.has(name));

describe('every plugin package bundles for the browser (esbuild, platform browser, built dist)', () => {
  it.each(packages)('$name', async ({ dir, name }) => {
    const result = await build({
      stdin: { contents: `export * from '${name}';`, resolveDir: join(repoRoot, 'packages', dir) },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      metafile: true,
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((file) => /node_modules\/webgpu\/|webgpu-node|\/backends\.js$/.test(file))).toEqual(
      [],
    );
    expect(
      inputs.some((file) => file.includes(`packages/${dir}/dist/`) || file.includes(`/${dir}/dist/`)),
    ).toBe(true);
  });
});
