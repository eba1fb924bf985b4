import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sealManifest, sha256 } from '@kstar/checkpoint';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_FORMAT_VERSION } from '../src/checkpoint/format.ts';
import type { TrainReport } from '../src/index.ts';
import { cli } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-damage-'));
const saved = join(dir, 'saved');
const step = (n: number) => `step-${String(n).padStart(8, '0')}`;
const COMMON = ['--backend', 'cpu', '--batch', '2', '--seq', '16', '--eval-every', '0'];

/** A fresh copy of the two saved checkpoints (steps 1 and 2), to damage. */
function copy(name: string): string {
  const to = join(dir, name);
  cpSync(saved, to, { recursive: true });
  return to;
}

const digest = (d: string) =>
  ['manifest.json', 'model.safetensors', 'optimizer.rank0.safetensors', 'trainer.json'].map((f) => {
    try {
      return sha256(readFileSync(join(d, f)));
    } catch {
      return 'missing';
    }
  });

let whole: TrainReport;

beforeAll(async () => {
  const report = join(dir, 'whole.json');
  const r = await cli([
    'train',
    ...COMMON,
    '--steps',
    '3',
    '--save-dir',
    saved,
    '--save-every',
    '1',
    '--keep',
    '2',
    '--report',
    report,
  ]);
  expect(r.code, r.stderr).toBe(0);
  whole = JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
}, 300_000);

describe('damaged checkpoints', () => {
  it('keeps only the newest --keep 2', () => {
    const r = digest(join(saved, step(1)));
    expect(r.every((x) => x === 'missing')).toBe(true);
    expect(digest(join(saved, step(3))).includes('missing')).toBe(false);
  });

  const damages: Array<[string, (d: string) => void, RegExp]> = [
    [
      'a flipped byte',
      (d) => {
        const f = join(d, 'model.safetensors');
        const b = readFileSync(f);
        b[b.length - 5] ^= 0x10;
        writeFileSync(f, b);
      },
      /checkpoint file '.*step-00000003\/model\.safetensors' fails its SHA-256 check: it is damaged/,
    ],
    [
      'a truncated file',
      (d) => truncateSync(join(d, 'optimizer.rank0.safetensors'), 1000),
      /checkpoint file '.*step-00000003\/optimizer\.rank0\.safetensors' has 1000 bytes, the manifest says \d+: it is truncated or damaged/,
    ],
    [
      'a deleted file',
      (d) => rmSync(join(d, 'trainer.json')),
      /checkpoint file '.*step-00000003\/trainer\.json' is missing/,
    ],
    [
      'a deleted manifest',
      (d) => rmSync(join(d, 'manifest.json')),
      /checkpoint file '.*step-00000003\/manifest\.json' is missing: the directory is not a \(whole\) checkpoint/,
    ],
    [
      'a flipped byte in the manifest',
      (d) => {
        const f = join(d, 'manifest.json');
        writeFileSync(f, readFileSync(f, 'utf8').replace('"step": 3', '"step": 4'));
      },
      /checkpoint file '.*step-00000003\/manifest\.json' fails its own SHA-256: it is damaged/,
    ],
    [
      'a manifest from a newer format',
      (d) => {
        const f = join(d, 'manifest.json');
        const { manifestSha256: _, ...m } = JSON.parse(readFileSync(f, 'utf8'));
        writeFileSync(
          f,
          JSON.stringify(sealManifest({ ...m, formatVersion: CHECKPOINT_FORMAT_VERSION + 1 })),
        );
      },
      new RegExp(
        `checkpoint file '.*step-00000003/manifest\\.json' has format version ${CHECKPOINT_FORMAT_VERSION + 1} \\(K\\* 0\\.1\\.0\\); this K\\* reads version ${CHECKPOINT_FORMAT_VERSION} and older: upgrade K\\*`,
      ),
    ],
  ];

  it.each(damages)(
    '%s: one line naming the file, exit 2, nothing overwritten',
    async (name, damage, message) => {
      const d = copy(name.replace(/\W+/g, '-'));
      damage(join(d, step(3)));
      const before = [digest(join(d, step(2))), digest(join(d, step(3)))];
      const r = await cli(['train', '--resume', join(d, step(3))]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect([digest(join(d, step(2))), digest(join(d, step(3)))]).toEqual(before);
    },
  );

  it.each(damages)(
    '%s: --resume latest warns and falls back to the newest whole one',
    async (name, damage, message) => {
      const d = copy(`latest-${name.replace(/\W+/g, '-')}`);
      damage(join(d, step(3)));
      const report = join(d, 'resumed.json');
      const r = await cli([
        'train',
        '--resume',
        'latest',
        '--save-dir',
        d,
        '--steps',
        '3',
        '--report',
        report,
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/kstar: warning: skipping damaged checkpoint: /);
      expect(r.stderr).toMatch(message);
      const resumed = JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
      expect(resumed.resumed?.step).toBe(2);
      expect(resumed.losses).toEqual(whole.losses.slice(2));
    },
  );

  it('a flag contradicting the checkpoint is an error naming both values; a compatible change is reported', async () => {
    const d = copy('contradict');
    const bad = await cli(['train', '--resume', join(d, step(2)), '--optimizer', 'lion']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /optimizer = "lion" contradicts checkpoint '.*step-00000002' \(optimizer = "adamw"\)/,
    );
    const shape = await cli(['train', '--resume', join(d, step(2)), '--context', '64']);
    expect(shape.code).toBe(2);
    expect(shape.stderr).toMatch(/context = 64 contradicts checkpoint/);
    const report = join(d, 'more.json');
    const ok = await cli([
      'train',
      '--resume',
      join(d, step(2)),
      '--steps',
      '4',
      '--lr',
      '0.001',
      '--report',
      report,
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const r = JSON.parse(readFileSync(report, 'utf8')) as TrainReport;
    expect(r.losses).toHaveLength(2);
    expect(r.resumed?.changes).toEqual(expect.arrayContaining(['steps: 3 → 4', 'lr: 0.003 → 0.001']));
  });

  it('--resume latest without --save-dir, and a save directory without checkpoints, are clear errors', async () => {
    const a = await cli(['train', '--resume', 'latest']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--resume latest needs --save-dir DIR/);
    const b = await cli(['train', '--resume', 'latest', '--save-dir', join(dir, 'empty')]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/holds no step-N checkpoint/);
  });
});
