// Is a ZeRO-3 checkpoint's resume exact? Trains `tiny` over 2 MPI ranks (zero3, adam8bit, split24) for 4 steps saving at
// step 2, resumes from it, and compares the resumed losses with the uninterrupted run's; also counts how many exported
// weights carry bits below bf16 (split24 keeps 24). Needs mpirun. LABEL names the trainer source measured (default HEAD).
//   node --conditions=@kstar/source --import tsx apps/trainer/scripts/zero3-resume-exactness.ts OUT.json [LABEL]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVERY_RANK, readCheckpoint } from '../src/checkpoint/read.ts';
import { modelFromCheckpoint } from '../src/checkpoint/weights.ts';

const [out, label = 'HEAD'] = process.argv.slice(2);
if (!out) throw new Error('usage: zero3-resume-exactness.ts OUT.json [LABEL]');
const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const node = [process.execPath, '--conditions=@kstar/source', '--import', 'tsx', bin];
const flags = [
  ...['--backend', 'cpu', '--seq', '16', '--batch', '2', '--eval-every', '0', '--sample-tokens', '0'],
  ...['--sharding', 'zero3', '--optimizer', 'adam8bit', '--master-weights', 'split24'],
];
const dir = mkdtempSync(join(tmpdir(), 'kstar-zero3-resume-'));
const mpirun = (args: string[]) => {
  const r = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', ...node, ...args], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`mpirun ${args.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
};
const save = join(dir, 'save');
const report = (name: string) => ['--report', join(dir, name)];
mpirun([
  'train',
  ...flags,
  '--steps',
  '4',
  '--save-dir',
  save,
  '--save-every',
  '2',
  '--keep',
  '2',
  ...report('whole.json'),
]);
const ckpt = join(save, 'step-00000002');
mpirun(['train', '--resume', ckpt, ...report('resumed.json')]);
const losses = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8')).losses as number[];
const whole = losses('whole.json');
const resumed = losses('resumed.json');

const model = await modelFromCheckpoint(readCheckpoint(ckpt, EVERY_RANK));
let weights = 0;
let below = 0;
for (const v of model.variables.values()) {
  const bits = new Uint32Array(((await v.data()) as Float32Array).slice().buffer);
  weights += bits.length;
  below += bits.filter((b) => (b & 0xffff) !== 0).length;
}
model.dispose();
const shardBytes = [0, 1].map((r) => statSync(join(ckpt, `model.rank${r}.safetensors`)).size);
rmSync(dir, { recursive: true, force: true });

const result = {
  command: `node --conditions=@kstar/source --import tsx apps/trainer/scripts/zero3-resume-exactness.ts ${out} ${label}`,
  label,
  date: new Date().toISOString(),
  commit: spawnSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).stdout.trim(),
  // false when apps/trainer/src was checked out from elsewhere (a 'before' run: `git checkout OLD -- apps/trainer/src`).
  trainerSrcMatchesCommit:
    spawnSync('git', ['diff', '--quiet', 'HEAD', '--', 'apps/trainer/src']).status === 0,
  machine: {
    cpus: cpus().length,
    memoryBytes: totalmem(),
    node: process.version,
    note: '2-core x86-64, Debian 12, Node 20, shared with parallel jobs; tfjs cpu backend, 2 MPI ranks (Open MPI)',
  },
  run: `tiny, ${flags.join(' ')}; uninterrupted 4 steps vs saved at step 2 and resumed (steps 3-4)`,
  uninterruptedLosses: whole,
  resumedLosses: resumed,
  resumedEqualsUninterrupted: resumed.every((l, i) => l === whole[i + 2]),
  step4LossDifference: Math.abs((resumed[1] ?? Number.NaN) - (whole[3] ?? Number.NaN)),
  exported: { weights, withBitsBelowBf16: below, fraction: below / weights },
  modelShardFileBytes: shardBytes,
};
writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
console.log(JSON.stringify(result, null, 1));
