// The repository's structure in numbers (issue 16): repeated places (the `duplicates` tool), lines of the
// trainer's source, `as unknown as` / `as never` casts, and lines of the drop-in optimizer classes.
// Usage (repo root): node --import tsx scripts/structure-metrics.ts --json bench/results/2026-12-02-structure.json
//   [--machine "2-core x86-64, shared with parallel jobs"] [--seconds 120] [--root DIR] [--before FILE]
// `--root` measures another tree (e.g. `git archive <base> | tar -x -C DIR`, the state before a change);
// `--before` copies the headline numbers of an earlier result file beside these ones, with the change.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../apps/trainer/src/atomic-write.ts';
import { machineInfo } from '../apps/trainer/src/machine.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'string' },
    machine: { type: 'string' },
    seconds: { type: 'string', default: '120' },
    root: { type: 'string' },
    before: { type: 'string' },
  },
});
const ROOT = values.root ?? new URL('..', import.meta.url).pathname;
const isGit = statSync(join(ROOT, '.git'), { throwIfNoEntry: false }) != null;
if (values.json == null) {
  console.error('structure-metrics: --json FILE is required (e.g. bench/results/2026-12-02-structure.json)');
  process.exit(2);
}

/** Every file below `dir` but node_modules, dist and dot-folders (for a tree that is not a git checkout). */
function walk(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    if (e.name.startsWith('.') || e.name === 'node_modules' || e.name === 'dist') return [];
    const path = dir === '' ? e.name : `${dir}/${e.name}`;
    return e.isDirectory() ? walk(path) : [path];
  });
}
/** Tracked and untracked-but-not-ignored files, as git lists them. */
const files = (
  isGit
    ? execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
        cwd: ROOT,
        encoding: 'utf8',
      })
        .split('\n')
        .filter((f) => f !== '')
    : walk('')
).filter((f) => statSync(join(ROOT, f), { throwIfNoEntry: false })?.isFile());
const tsFiles = files.filter((f) => f.endsWith('.ts'));
const lines = (f: string) => readFileSync(join(ROOT, f), 'utf8').split('\n').length - 1;

const castPattern = /as unknown as|as never\b/g;
// This script names the pattern (here and in its header) without casting: it does not count itself.
const SELF = 'scripts/structure-metrics.ts';
const casts = tsFiles
  .filter((f) => f !== SELF)
  .map((f) => ({
    file: f,
    count: (readFileSync(join(ROOT, f), 'utf8').match(castPattern) ?? []).length,
  }));

const trainerDir = join(ROOT, 'apps/trainer/src');
const trainerFiles = readdirSync(trainerDir).filter((f) => f.endsWith('.ts'));
const trainerLines = trainerFiles.reduce((n, f) => n + lines(relative(ROOT, join(trainerDir, f))), 0);
const benchLines = trainerFiles
  .filter((f) => f.startsWith('bench'))
  .reduce((n, f) => n + lines(relative(ROOT, join(trainerDir, f))), 0);

/** Every .ts below apps/trainer/src, subfolders (checkpoint/) included, by path below it. */
const trainerTree = Object.fromEntries(
  tsFiles
    .filter((f) => f.startsWith('apps/trainer/src/'))
    .map((f) => [f.slice('apps/trainer/src/'.length), lines(f)]),
);

const dropIns = tsFiles.filter((f) =>
  /^packages\/(optim-[^/]+\/src\/optimizer|core\/src\/drop-in-optimizer)\.ts$/.test(f),
);

// `duplicates` prints "N pairs of places (M files read), …" first (or "no duplicates").
const dupArgs = ['--most', '200', '--seconds', values.seconds!, '--repo', ROOT];
const dupOut = execFileSync('duplicates', dupArgs, { encoding: 'utf8', maxBuffer: 1 << 26 });
const head = dupOut.split('\n')[0]!;
const pairs = head.startsWith('no duplicates') ? 0 : Number(/^(\d+) pairs/.exec(head)?.[1] ?? Number.NaN);

// Pairs with both sides in the optimizer stack (core, kernels, optim-*): the area issue 16's optimizer work touches.
const rows = dupOut.split('\n').filter((l) => /^D\d+ /.test(l));
const optimizerStack = /^packages\/(core|kernels|optim-[^/]+)\//;
const stackPairs = rows.filter((l) => {
  const [a, b] = l.split(' ~ ').map((side) => side.replace(/^D\d+ /, ''));
  return optimizerStack.test(a ?? '') && optimizerStack.test(b ?? '');
}).length;

const result = {
  command: `node --import tsx scripts/structure-metrics.ts --json ${values.json}${values.root ? ` --root ${values.root}` : ''}${values.before ? ` --before ${values.before}` : ''}`,
  date: new Date().toISOString(),
  root: values.root ?? '.',
  commit: isGit ? execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim() : null,
  machine: { ...machineInfo(), note: values.machine ?? null },
  duplicates: {
    command: `duplicates ${dupArgs.slice(0, 4).join(' ')}`,
    pairs,
    summary: head,
    /** Of the rows listed (at most 200), those with both sides in packages/core, packages/kernels or packages/optim-*. */
    optimizerStackPairs: stackPairs,
    incomplete: dupOut.split('\n').filter((l) => l.startsWith('incomplete:')),
    top: dupOut.split('\n').slice(1, 11),
  },
  trainerSource: {
    files: trainerFiles.length,
    lines: trainerLines,
    benchmarkLines: benchLines,
    // With the subfolders (checkpoint/), as wc -l over apps/trainer/src and its folders counts them.
    linesWithSubfolders: Object.values(trainerTree).reduce((n, l) => n + l, 0),
    byFile: trainerTree,
  },
  casts: {
    pattern: castPattern.source,
    notCounted: `${SELF} (the pattern's own text)`,
    total: casts.reduce((n, c) => n + c.count, 0),
    inSource: casts.filter((c) => c.file.includes('/src/')).reduce((n, c) => n + c.count, 0),
    byPackage: Object.fromEntries(
      Object.entries(
        casts.reduce<Record<string, number>>((acc, c) => {
          const key = c.file.split('/').slice(0, 2).join('/');
          acc[key] = (acc[key] ?? 0) + c.count;
          return acc;
        }, {}),
      ).filter(([, n]) => n > 0),
    ),
  },
  dropInOptimizerLines: Object.fromEntries(dropIns.map((f) => [f, lines(f)])),
};

/** The numbers issue 16 sets bounds on, of a result file of this script. */
const headline = (r: typeof result) => ({
  duplicatePairs: r.duplicates.pairs,
  optimizerStackPairs: r.duplicates.optimizerStackPairs,
  trainerSourceLines: r.trainerSource.lines,
  casts: r.casts.total,
  castsInSource: r.casts.inSource,
});
const comparison =
  values.before == null
    ? {}
    : (() => {
        const before = JSON.parse(readFileSync(values.before, 'utf8')) as typeof result;
        const [b, a] = [headline(before), headline(result)];
        return {
          before: { file: values.before, commit: before.commit, root: before.root, ...b },
          after: a,
          change: Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - b[k as keyof typeof b]])),
        };
      })();
writeFileAtomic(values.json, `${JSON.stringify({ ...result, ...comparison }, null, 2)}\n`);
console.log(
  `duplicates ${pairs} pairs; apps/trainer/src ${trainerLines} lines (${benchLines} benchmarks); casts ${result.casts.total} (${result.casts.inSource} in src)`,
);
