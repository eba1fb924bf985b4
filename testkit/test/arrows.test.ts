import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// The dependency-arrow rule lives in the root biome.json (an override of `style/noRestrictedImports` for the
// plugins' src and test folders). These tests run Biome itself: on planted files in a scratch tree that uses the
// same configuration, and on the real tree.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIOME = join(ROOT, 'node_modules', '.bin', 'biome');

function lintArrows(cwd: string, target = '.'): { status: number | null; flagged: string[] } {
  const r = spawnSync(BIOME, ['lint', '--only=style/noRestrictedImports', '--max-diagnostics=200', target], {
    cwd,
    encoding: 'utf8',
  });
  const flagged = [
    ...`${r.stdout}${r.stderr}`.matchAll(/^(\S+\.ts):\d+:\d+ lint\/style\/noRestrictedImports/gm),
  ]
    .map((m) => m[1]!)
    .sort();
  return { status: r.status, flagged };
}

describe('dependency arrows (plugins import only core, kernels and, in tests, testkit; the trainer never imports bench)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'kstar-arrows-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  const config = JSON.parse(readFileSync(join(ROOT, 'biome.json'), 'utf8')) as Record<string, unknown>;
  delete config.$schema;
  writeFileSync(join(scratch, 'biome.json'), JSON.stringify(config));
  const plant = (path: string, from: string) => {
    mkdirSync(join(scratch, dirname(path)), { recursive: true });
    writeFileSync(join(scratch, path), `import { x } from '${from}';\n\nexport const y = x;\n`);
  };

  it('fails on planted violations (another plugin, the model, a relative path out of the package), not on allowed imports', () => {
    plant('packages/optim-fake/src/plugin-import.ts', '@kstar/optim-adamw');
    plant('packages/act-fake/test/model-import.test.ts', '@kstar/gpt');
    plant('packages/master-split24/test/relative-escape.test.ts', '../../optim-lion/src/index.ts');
    plant('packages/train-loop/src/plugin-import.ts', '@kstar/optim-lomo');
    plant('packages/optim-fake/src/core-import.ts', '@kstar/core');
    plant('packages/optim-fake/src/kernels-import.ts', '@kstar/kernels');
    plant('packages/optim-fake/test/testkit-import.test.ts', '@kstar/testkit');
    plant('packages/optim-fake/src/own-import.ts', './core-import.ts');
    plant('apps/trainer/src/app-import.ts', '@kstar/optim-adamw');
    plant('apps/trainer/src/bench-import.ts', '@kstar/bench');
    plant('bench/src/trainer-import.ts', '@kstar/trainer/internal');
    const { status, flagged } = lintArrows(scratch);
    expect(status).not.toBe(0);
    expect(flagged).toEqual([
      'apps/trainer/src/bench-import.ts',
      'packages/act-fake/test/model-import.test.ts',
      'packages/master-split24/test/relative-escape.test.ts',
      'packages/optim-fake/src/plugin-import.ts',
      'packages/train-loop/src/plugin-import.ts',
    ]);
  });

  it('the real tree holds the rule', () => {
    const { status, flagged } = lintArrows(ROOT, '.');
    expect(flagged).toEqual([]);
    expect(status).toBe(0);
  });
});
