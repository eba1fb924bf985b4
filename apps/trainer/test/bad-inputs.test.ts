import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProcess } from './cli-helpers.ts';

// Every bad input must be refused in validation: exit code 2, exactly one line on stderr, no stack trace, nothing on
// stdout, nothing written, no training step, within 10 s. The CLI runs as the offline bundle `pnpm bundle` ships
// (scripts/bundle.mjs: the same source, bundled by esbuild): it starts in about 1 s where tsx takes about 4 s, so
// the whole table stays well under a minute on 2 shared cores.

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bundleDir = 'node_modules/.cache/kstar-bad-inputs';
const cli = join(root, bundleDir, 'kstar.mjs');
const benchCli = join(root, bundleDir, 'bench.mjs'); // `pnpm bench NAME` (the private @kstar/bench package)
const goldenPath = join(root, 'fixtures/golden/optimizers.json');
const dir = mkdtempSync(join(tmpdir(), 'kstar-bad-'));
const fx = join(dir, 'fixtures');
const out = join(dir, 'out'); // every report/--out path of the table points here: it must stay empty
const PARALLEL = 2; // the 2 cores of CI: more only queues processes and stretches each one's wall time
const LIMIT_MS = 10_000;

interface Case {
  name: string;
  args: string[];
  message: RegExp;
}

/** `kstar train ARGS --report out/<n>.json` (unless the case names its own output). */
const train = (name: string, args: string[], message: RegExp): Case => ({
  name,
  args: [
    'train',
    ...args,
    ...(args.includes('--report') ? [] : ['--report', join(out, `${slug(name)}.json`)]),
  ],
  message,
});
const replay = (name: string, args: string[], message: RegExp): Case => ({
  name,
  args: ['replay', ...args],
  message,
});
const slug = (s: string) => s.replace(/[^a-z0-9]+/gi, '-');
const f = (name: string) => join(fx, name);

/** Golden files: the real one with one thing broken. */
function golden(name: string, edit: (g: Record<string, unknown> & { runs: unknown[] }) => void): string {
  const g = JSON.parse(readFileSync(goldenPath, 'utf8'));
  edit(g);
  writeFileSync(f(name), JSON.stringify(g));
  return f(name);
}

function fixtures(): void {
  mkdirSync(fx, { recursive: true });
  mkdirSync(out, { recursive: true });
  const text = (name: string, body: string) => writeFileSync(f(name), body);
  text('invalid.json', '{"steps": 5,');
  text('unknown-field.json', JSON.stringify({ steps: 5, learningRate: 0.1 }));
  text('array.json', '[1, 2]');
  text('string-steps.json', JSON.stringify({ steps: '5' }));
  text('nested-lr.json', JSON.stringify({ optimizerOptions: { lr: 0.1 } }));
  text('config.yaml', 'steps: 5\n');
  text('throws.mjs', "throw new Error('config exploded');\n");
  text('syntax.mjs', 'export default { steps: 5,, };\n');
  text('syntax.js', 'export default { steps: ;\n');
  text('syntax.ts', 'export default { steps: 5 as };\n');
  text('no-default.mjs', 'export const steps = 5;\n');
  text('number-default.mjs', 'export default 5;\n');
  mkdirSync(f('dir.json'));
  text('empty.txt', '   \n\n');
  text('short.txt', 'tiny corpus');
  writeFileSync(f('binary.txt'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 32)));
  text('bad.jsonl', '{"text": "one"}\n{not json}\n');
  text('no-text.jsonl', '{"body": "one"}\n');
  mkdirSync(f('empty-folder'));
  // Reading /proc/self/mem at offset 0 fails with EIO: an unreadable corpus with a plausible name.
  symlinkSync('/proc/self/mem', f('eio.txt'));
  symlinkSync(f('nowhere.txt'), f('dangling.txt'));
  text('a-file', 'not a directory');
  golden('runs-number.json', (g) => {
    Object.assign(g, { runs: 5 });
  });
  golden('null-run.json', (g) => {
    g.runs[1] = null;
  });
  golden('init-short.json', (g) => {
    (g.init as Record<string, number[]>).b!.pop();
  });
  golden('unknown-param.json', (g) => {
    (g.runs[0] as { params_used: string[] }).params_used.push('Z');
  });
  golden('lr-negative.json', (g) => {
    (g.runs[0] as { hparams: Record<string, unknown> }).hparams.lr = -1;
  });
  golden('beta-string.json', (g) => {
    (g.runs[0] as { hparams: Record<string, unknown> }).hparams.beta1 = '0.9';
  });
  golden('step-beyond.json', (g) => {
    (g.runs[0] as { after: Array<{ step: number }> }).after[0]!.step = 99;
  });
  golden('grad-short.json', (g) => {
    (g.grads as Array<Record<string, number[]>>)[0]!.W!.pop();
  });
  golden('no-runs.json', (g) => {
    delete (g as Record<string, unknown>).runs;
  });
  golden('hparams-array.json', (g) => {
    (g.runs[0] as { hparams: unknown }).hparams = [];
  });
}

const cases: Case[] = [
  // Numbers: strict decimal parsing, then the schema.
  train('steps in hex', ['--steps', '0x2'], /--steps: '0x2' is not a decimal number/),
  train('steps in binary', ['--steps', '0b11'], /--steps: '0b11' is not a decimal number/),
  train('steps with underscore', ['--steps', '1_000'], /--steps: '1_000' is not a decimal number/),
  train('steps not a number', ['--steps', 'abc'], /--steps: 'abc'/),
  train('steps empty', ['--steps', ''], /--steps: ''/),
  train('steps fractional', ['--steps', '1.5'], /--steps: '1.5' is not an integer/),
  train('steps negative', ['--steps', '-3'], /field 'steps'/),
  train('steps zero', ['--steps', '0'], /field 'steps'/),
  train('steps overflow', ['--steps', '1e400'], /--steps: '1e400' is out of range/),
  train('steps Infinity', ['--steps', 'Infinity'], /--steps: 'Infinity'/),
  train('batch zero', ['--batch', '0'], /field 'batch'/),
  train(
    'seq longer than the context',
    ['--seq', '4096'],
    /sequence length 4096 is longer than the model's context 128/,
  ),
  train('lr negative', ['--lr', '-1'], /field 'lr'/),
  train('lr zero', ['--lr', '0'], /field 'lr'/),
  train('lr hex', ['--lr', '0x10'], /--lr: '0x10' is not a decimal number/),
  train('warmup negative', ['--warmup', '-1'], /field 'warmup'/),
  train('seed fractional', ['--seed', '1.5'], /--seed: '1.5' is not an integer/),
  train('eval-every negative', ['--eval-every', '-1'], /field 'evalEvery'/),
  train('eval-batches zero', ['--eval-batches', '0'], /field 'evalBatches'/),
  train('blocks-per-segment zero', ['--blocks-per-segment', '0'], /field 'blocksPerSegment'/),
  train('update-chunk-bytes zero', ['--update-chunk-bytes', '0'], /field 'updateChunkBytes'/),
  train('context zero', ['--context', '0'], /field 'context'/),
  train('spike guard at 1', ['--spike-guard', '1'], /field 'spikeGuard'/),
  train('spike guard in hex', ['--spike-guard', '0x2'], /--spike-guard: '0x2' is not a decimal number/),
  // Names.
  train('unknown preset', ['--preset', 'huge'], /field 'preset'/),
  train('unknown backend', ['--backend', 'gpu'], /field 'backend'/),
  train('unknown mode', ['--mode', 'half'], /field 'mode'/),
  train('unknown master weights', ['--master-weights', 'fp16'], /field 'masterWeights'/),
  train('unknown tokenizer', ['--tokenizer', 'bpe'], /field 'tokenizer'/),
  train('unknown optimizer', ['--optimizer', 'adamz'], /unknown optimizer 'adamz'/),
  train('lomo in full mode', ['--optimizer', 'lomo', '--mode', 'full'], /needs --mode segmented/),
  train('unknown flag', ['--stepz', '3'], /stepz/),
  train('positional argument', ['extra'], /extra/),
  train('flag without value', ['--steps'], /--steps/),
  // Optimizer options: own names only, lr has one home.
  train(
    'option constructor (adamw)',
    ['--optimizer-option', 'constructor=1'],
    /unknown option 'constructor'/,
  ),
  train('option __proto__ (adamw)', ['--optimizer-option', '__proto__=1'], /'__proto__=1' is not name=value/),
  train(
    'option toString (adafactor)',
    ['--optimizer', 'adafactor', '--optimizer-option', 'toString=1'],
    /unknown option 'toString'/,
  ),
  train(
    'option hasOwnProperty (adam8bit)',
    ['--optimizer', 'adam8bit', '--optimizer-option', 'hasOwnProperty=1'],
    /unknown option 'hasOwnProperty'/,
  ),
  train(
    'option valueOf (lion)',
    ['--optimizer', 'lion', '--optimizer-option', 'valueOf=1'],
    /unknown option 'valueOf'/,
  ),
  train('option lr', ['--optimizer-option', 'lr=5'], /use --lr 5/),
  train('option without value', ['--optimizer-option', 'beta2'], /'beta2' is not name=value/),
  train('option with two =', ['--optimizer-option', 'beta2=1=2'], /'beta2=1=2' is not name=value/),
  train('option not a number', ['--optimizer-option', 'beta2=abc'], /optimizer-option beta2: 'abc'/),
  train('option in hex', ['--optimizer-option', 'beta2=0x1'], /optimizer-option beta2: '0x1'/),
  train('option out of range', ['--optimizer-option', 'beta2=2'], /beta2/),
  // Activations and memory.
  train('unknown activation strategy', ['--activations', 'bogus'], /bogus/),
  train('checkpoint with --mode full', ['--activations', 'checkpoint', '--mode', 'full'], /--mode full/),
  train(
    'memory budget not a size',
    ['--memory-budget', '12parsecs'],
    /memory budget '12parsecs' is not a size/,
  ),
  train('memory budget zero', ['--memory-budget', '0'], /memoryBudget/),
  train(
    'memory budget too small',
    ['--memory-budget', '1KiB', '--backend', 'cpu'],
    /memory budget 1,024 bytes cannot hold a step/,
  ),
  train(
    'batch 100000 on wasm',
    ['--batch', '100000', '--backend', 'wasm'],
    /predicted to need .* wasm heap limit/,
  ),
  train(
    'batch 100000 on cpu',
    ['--batch', '100000', '--backend', 'cpu'],
    /predicted to need .* on the cpu backend/,
  ),
  train(
    'context and seq 100000',
    ['--context', '100000', '--seq', '100000', '--backend', 'wasm'],
    /predicted to need .*--memory-budget/,
  ),
  // Config files.
  train('config missing', ['--config', f('missing.json')], /config file .*missing\.json' does not exist/),
  train('config is a directory', ['--config', f('dir.json')], /config file .*dir\.json' is not a file/),
  train('config invalid JSON', ['--config', f('invalid.json')], /is not valid JSON/),
  train('config unknown field', ['--config', f('unknown-field.json')], /unknown config field 'learningRate'/),
  train('config is an array', ['--config', f('array.json')], /must hold \(or default-export\) an object/),
  train('config string steps', ['--config', f('string-steps.json')], /field 'steps'/),
  train('config lr in optimizerOptions', ['--config', f('nested-lr.json')], /use --lr 0\.1/),
  train('config extension', ['--config', f('config.yaml')], /extension '\.yaml'/),
  train(
    'config module throws',
    ['--config', f('throws.mjs')],
    /throws\.mjs' failed to load .*config exploded/,
  ),
  train(
    'config .mjs syntax error',
    ['--config', f('syntax.mjs')],
    /syntax\.mjs' failed to load \(SyntaxError/,
  ),
  train('config .js syntax error', ['--config', f('syntax.js')], /syntax\.js' failed to load/),
  train('config .ts syntax error', ['--config', f('syntax.ts')], /syntax\.ts' failed to load/),
  train(
    'config without default export',
    ['--config', f('no-default.mjs')],
    /must hold \(or default-export\)/,
  ),
  train(
    'config default is a number',
    ['--config', f('number-default.mjs')],
    /must hold \(or default-export\)/,
  ),
  // Corpora.
  train('corpus missing', ['--corpus', f('nope.txt')], /corpus path .*nope\.txt' does not exist/),
  train('corpus empty', ['--corpus', f('empty.txt')], /empty/),
  train('corpus too short', ['--corpus', f('short.txt')], /too short/),
  train('corpus binary', ['--corpus', f('binary.txt')], /binary/),
  train('corpus bad jsonl line', ['--corpus', f('bad.jsonl')], /bad\.jsonl/),
  train('corpus jsonl without text', ['--corpus', f('no-text.jsonl')], /text/),
  train('corpus empty folder', ['--corpus', f('empty-folder')], /no usable files/),
  train('corpus unreadable (EIO)', ['--corpus', f('eio.txt')], /corpus '.*eio\.txt' cannot be read \(EIO/),
  train('corpus dangling link', ['--corpus', f('dangling.txt')], /does not exist/),
  // Output paths: checked before any work.
  train(
    'report in a missing directory',
    ['--report', join(out, 'missing/r.json')],
    /directory .*missing' does not exist/,
  ),
  train('report onto a directory', ['--report', out], /is a directory/),
  train('report onto /dev/full', ['--report', '/dev/full'], /not a regular file/),
  train('report under /proc', ['--report', '/proc/kstar-report.json'], /cannot write in '\/proc'/),
  train('report under /sys', ['--report', '/sys/kstar-report.json'], /cannot write in '\/sys'/),
  train('report under a file', ['--report', join(f('a-file'), 'r.json')], /is not a directory/),
  train('report empty', ['--report', ''], /report/),
  // kstar replay.
  replay('replay without flags', [], /needs --golden FILE and --out FILE/),
  replay(
    'replay unknown backend',
    ['--golden', goldenPath, '--out', join(out, 'x.json'), '--backend', 'gpu'],
    /unknown backend 'gpu'/,
  ),
  replay(
    'replay golden missing',
    ['--golden', f('nope.json'), '--out', join(out, 'x.json')],
    /does not exist/,
  ),
  replay(
    'replay golden not JSON',
    ['--golden', f('invalid.json'), '--out', join(out, 'x.json')],
    /cannot be read as JSON/,
  ),
  replay(
    'replay runs is a number',
    ['--golden', f('runs-number.json'), '--out', join(out, 'x.json')],
    /field 'runs'/,
  ),
  replay(
    'replay a null run',
    ['--golden', f('null-run.json'), '--out', join(out, 'x.json')],
    /field 'runs\.1'/,
  ),
  replay('replay no runs', ['--golden', f('no-runs.json'), '--out', join(out, 'x.json')], /field 'runs'/),
  replay(
    'replay hparams array',
    ['--golden', f('hparams-array.json'), '--out', join(out, 'x.json')],
    /runs\.0\.hparams/,
  ),
  replay(
    'replay init shape',
    ['--golden', f('init-short.json'), '--out', join(out, 'x.json')],
    /'b' has 23 values, its shape \[24\] needs 24/,
  ),
  replay(
    'replay unknown parameter',
    ['--golden', f('unknown-param.json'), '--out', join(out, 'x.json')],
    /unknown parameter 'Z'/,
  ),
  replay(
    'replay negative lr',
    ['--golden', f('lr-negative.json'), '--out', join(out, 'x.json')],
    /runs\.0 \(adamw\) hparams/,
  ),
  replay(
    'replay string beta1',
    ['--golden', f('beta-string.json'), '--out', join(out, 'x.json')],
    /runs\.0 \(adamw\) hparams/,
  ),
  replay(
    'replay step beyond grads',
    ['--golden', f('step-beyond.json'), '--out', join(out, 'x.json')],
    /step 99 is recorded but grads has 10/,
  ),
  replay(
    'replay short gradient',
    ['--golden', f('grad-short.json'), '--out', join(out, 'x.json')],
    /grads\.0: 'W' has 767 values/,
  ),
  replay(
    'replay out in a missing directory',
    ['--golden', goldenPath, '--out', join(out, 'missing/x.json')],
    /does not exist/,
  ),
  replay('replay out onto /dev/full', ['--golden', goldenPath, '--out', '/dev/full'], /not a regular file/),
  replay('replay out onto a directory', ['--golden', goldenPath, '--out', out], /is a directory/),
  replay('replay unknown flag', ['--golden', goldenPath, '--outt', 'x'], /outt/),
  {
    name: 'bench results in a missing directory',
    args: ['bench', 'train', '--json', join(out, 'missing/b.json'), '--backends', 'cpu'],
    message: /--json '.*missing\/b\.json': directory '.*missing' does not exist/,
  },
  {
    name: 'bench results onto a directory',
    args: ['bench', 'checkpoint', 'size', '--json', out],
    message: /--json '.*' is a directory/,
  },
  {
    name: 'bench results (--json=) onto /dev/full',
    args: ['bench', 'memory', '--json=/dev/full'],
    message: /--json '\/dev\/full' is not a regular file/,
  },
  {
    name: 'report html under /proc',
    args: ['report', f('nothing.json'), '--html', '/proc/kstar.html'],
    message: /--html '\/proc\/kstar\.html': cannot write in '\/proc'/,
  },
  {
    name: 'export out under a file',
    args: ['export', '--checkpoint', f('no-checkpoint'), '--out', join(f('a-file'), 'hf')],
    message: /--out '.*a-file\/hf': '.*a-file' is not a directory/,
  },
  {
    name: 'bench checkpoint unknown preset (no probe line first)',
    args: ['bench', 'checkpoint', 'size', '--json', join(out, 'c.json'), '--preset', 'nope'],
    message: /unknown GPT preset 'nope'/,
  },
  {
    name: 'bench checkpoint negative steps',
    args: ['bench', 'checkpoint', 'cost', '--json', join(out, 'c.json'), '--steps', '-3'],
    message: /steps.*(>0|positive)/,
  },
  {
    name: 'bench checkpoint hexadecimal steps',
    args: ['bench', 'checkpoint', 'cost', '--json', join(out, 'c.json'), '--steps', '0x2'],
    message: /--steps: '0x2' is not a decimal number/,
  },
  {
    name: 'export unknown dtype',
    args: ['export', '--checkpoint', f('no-checkpoint'), '--out', join(out, 'hf'), '--dtype', 'float16'],
    message: /unknown dtype 'float16' for kstar export: use float32, bfloat16/,
  },
  {
    name: 'sample negative tokens',
    args: ['sample', '--checkpoint', f('no-checkpoint'), '--prompt', 'hi', '--tokens', '-1'],
    message: /tokens/,
  },
  train(
    'grad-accum with lomo',
    ['--grad-accum', '2', '--optimizer', 'lomo'],
    /--grad-accum 2 cannot be used with --optimizer lomo/,
  ),
  train('grad-accum zero', ['--grad-accum', '0'], /gradAccum/),
  train('grad-accum fraction', ['--grad-accum', '1.5'], /--grad-accum: '1\.5' is not an integer/),
  { name: 'unknown command', args: ['trian'], message: /unknown command 'trian'/ },
  { name: 'unknown benchmark', args: ['bench', 'nope'], message: /unknown benchmark 'nope'/ },
  {
    name: 'kstar bench',
    args: ['kstar-bench', 'gpu'],
    message: /moved out of the kstar CLI: run 'pnpm bench gpu …'/,
  },
];

/** `bench …` runs bench.mjs (what `pnpm bench …` runs); `kstar-bench …` is `kstar bench …`; the rest kstar.mjs. */
function runKstar(args: string[]) {
  const env = { ...process.env, CI: 'true', KSTAR_SKIP_WEBGPU: '1' };
  const [first, ...rest] = args;
  const argv =
    first === 'bench'
      ? [benchCli, ...rest]
      : first === 'kstar-bench'
        ? [cli, 'bench', ...rest]
        : [cli, ...args];
  return runProcess(process.execPath, argv, { cwd: dir, env, timeout: LIMIT_MS * 3 });
}

const results = new Map<string, Awaited<ReturnType<typeof runKstar>>>();

beforeAll(async () => {
  fixtures();
  execFileSync(process.execPath, [join(root, 'scripts/bundle.mjs'), bundleDir], {
    cwd: root,
    stdio: 'ignore',
  });
  const queue = [...cases];
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      for (let c = queue.shift(); c; c = queue.shift()) results.set(c.name, await runKstar(c.args));
    }),
  );
}, 300_000);

afterAll(() => {
  // Nothing any case could have written: no report, no temporary file, no probe left behind.
  expect(readdirSync(out)).toEqual([]);
});

describe('every bad input: exit 2, one stderr line, no stack trace, nothing written, no step, within 10 s', () => {
  it('the table has at least 60 cases, all distinct', () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = results.get(c.name)!;
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.endsWith('\n')).toBe(true);
    expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(/^kstar( bench)?: /);
    expect(r.stderr).not.toMatch(/\bat .*:\d+:\d+\)?$/m); // no stack frame
    expect(r.stderr).not.toMatch(/step\s+1\//); // no training step ran
    expect(r.stderr).toMatch(c.message);
    expect(r.ms).toBeLessThan(LIMIT_MS);
    for (const a of c.args) if (a.startsWith(out) && a !== out) expect(existsSync(a)).toBe(false);
  });
});
