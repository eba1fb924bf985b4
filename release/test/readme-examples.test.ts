import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkReadmes, EXAMPLES_DIR } from '../../scripts/readme-examples.mjs';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

describe('README code blocks are example files (packed-install.test.ts runs them)', () => {
  it('every ts/js block of every README is an example in release/user/readme/ or says why it is not run', () => {
    expect(checkReadmes(repoRoot)).toEqual([]);
  });

  it('the check finds a block that is no example, an edited copy, and an example no README shows', () => {
    const root = mkdtempSync(join(tmpdir(), 'kstar-readme-'));
    try {
      mkdirSync(join(root, EXAMPLES_DIR), { recursive: true });
      const example = "import { lion } from '@kstar/optim-lion';\nconst opt = lion({ lr: 1e-3 });";
      writeFileSync(
        join(root, EXAMPLES_DIR, 'shown.ts'),
        `// setup the README does not show\n// #region readme\n${example}\n// #endregion\nopt.describe();\n`,
      );
      writeFileSync(join(root, EXAMPLES_DIR, 'orphan.ts'), 'export const unused = 1;\n');
      const readme = [
        '# p',
        '```ts',
        example,
        '```',
        '<!-- not run: a declaration -->',
        '```ts',
        'declare const x: number;',
        '```',
        '```js',
        example.replace('1e-3', '3e-4'), // an edited copy of the example
        '```',
        '```sh',
        'pnpm build',
        '```',
      ].join('\n');
      writeFileSync(join(root, 'README.md'), readme);
      const problems = checkReadmes(root, ['README.md']);
      expect(problems).toHaveLength(2);
      expect(problems[0]).toMatch(/^README\.md:10: this code block is no example file/);
      expect(problems[1]).toMatch(/orphan\.ts: no README shows this example/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
