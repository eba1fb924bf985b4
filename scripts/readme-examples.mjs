// Every ```ts/```js block of every README is an example file that a test runs or type-checks: the block must equal
// a file under release/user/readme/ (the whole file, or its part between `// #region readme` and `// #endregion`),
// or say why it is not run on the line above it: `<!-- not run: reason -->`. Every example file must be shown by
// some README (no stale copies). release/test/readme-examples.test.ts runs this check; the packed-install test
// type-checks and runs the example files against the published packages. `node scripts/readme-examples.mjs` prints
// the problems.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const EXAMPLES_DIR = 'release/user/readme';
const CODE_LANGS = new Set(['ts', 'typescript', 'tsx', 'js', 'javascript', 'jsx', 'mjs', 'cjs', 'mts']);
const NOT_RUN = /^<!--\s*not run:\s*(\S.*?)\s*-->$/;
const REGION_START = /^\s*\/\/ #region readme\s*$/;
const REGION_END = /^\s*\/\/ #endregion\s*$/;

/** Trailing spaces and leading/trailing blank lines do not count. */
function normalize(text) {
  const lines = text.split('\n').map((l) => l.trimEnd());
  while (lines.length > 0 && lines[0] === '') lines.shift();
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  return lines.join('\n');
}

/** The README files of the repository (tracked or new, not ignored). */
export function readmeFiles(root) {
  const out = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '--', '*README.md'], {
    cwd: root,
    encoding: 'utf8',
  });
  return [...new Set(out.split('\n').filter((f) => f !== '' && existsSync(join(root, f))))].sort();
}

/** The fenced ts/js blocks of one Markdown text: their first line (1-based), code and `not run` reason. */
export function codeBlocks(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]);
    if (!open) continue;
    const fence = open[2];
    let end = i + 1;
    while (end < lines.length && !lines[end].trim().startsWith(fence)) end++;
    if (CODE_LANGS.has(open[3].toLowerCase())) {
      let above = i - 1;
      while (above >= 0 && lines[above].trim() === '') above--;
      const reason = above >= 0 ? NOT_RUN.exec(lines[above].trim())?.[1] : undefined;
      blocks.push({ line: i + 1, code: normalize(lines.slice(i + 1, end).join('\n')), notRun: reason });
    }
    i = end;
  }
  return blocks;
}

/** What a README shows of an example file: its `// #region readme` part, else the whole file. */
export function shownPart(source) {
  const lines = source.split('\n');
  const start = lines.findIndex((l) => REGION_START.test(l));
  if (start < 0) return normalize(source);
  const end = lines.findIndex((l, i) => i > start && REGION_END.test(l));
  if (end < 0) throw new Error('`// #region readme` has no `// #endregion` after it');
  return normalize(lines.slice(start + 1, end).join('\n'));
}

/** The example files (paths relative to the root) and what READMEs must show of each. */
export function exampleFiles(root) {
  const dir = join(root, EXAMPLES_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.(ts|mts|js|mjs)$/.test(f))
    .sort()
    .map((f) => {
      const path = `${EXAMPLES_DIR}/${f}`;
      return { path, shown: shownPart(readFileSync(join(root, path), 'utf8')) };
    });
}

/** Problems, one line each (`README.md:12: …`); empty when every block is an example or says why it is not run. */
export function checkReadmes(root, readmes = readmeFiles(root)) {
  const problems = [];
  const examples = exampleFiles(root);
  const shownBy = new Map(examples.map((e) => [e.path, []]));
  for (const readme of readmes) {
    for (const block of codeBlocks(readFileSync(join(root, readme), 'utf8'))) {
      if (block.notRun !== undefined) continue;
      const matches = examples.filter((e) => e.shown === block.code);
      if (matches.length === 0) {
        problems.push(
          `${readme}:${block.line}: this code block is no example file: put it in ${EXAMPLES_DIR}/ (the whole file, or between '// #region readme' and '// #endregion') so that the packed-install test runs it, or write '<!-- not run: reason -->' above it`,
        );
      }
      for (const m of matches) shownBy.get(m.path).push(`${readme}:${block.line}`);
    }
  }
  for (const [path, shown] of shownBy) {
    if (shown.length === 0)
      problems.push(`${path}: no README shows this example: copy it into its README or delete it`);
  }
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const problems = checkReadmes(root);
  for (const p of problems) console.error(p);
  if (problems.length > 0) process.exit(1);
  console.log(
    `every ts/js block of ${readmeFiles(root).length} READMEs is an example in ${EXAMPLES_DIR}/ or says why it is not run`,
  );
}
