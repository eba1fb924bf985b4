import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../src/index.ts';
import { capture } from './cli-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-cli-'));
const report = join(dir, 'report.json');

describe('kstar train: bad input is one line, exit code 2, nothing written', () => {
  const emptyCorpus = join(dir, 'empty.txt');
  writeFileSync(emptyCorpus, '   \n\n');
  const badConfig = join(dir, 'bad.json');
  writeFileSync(badConfig, JSON.stringify({ steps: 5, learningRate: 0.1 }));
  const cases: Array<[string, string[], RegExp]> = [
    ['unknown config field', ['--config', badConfig], /unknown config field 'learningRate'/],
    ['negative steps', ['--steps', '-3'], /field 'steps'/],
    ['zero update chunk', ['--update-chunk-bytes', '0'], /field 'updateChunkBytes'/],
    [
      'sequence longer than the context',
      ['--seq', '4096'],
      /sequence length 4096 is longer than the model's context 128/,
    ],
    ['missing corpus path', ['--corpus', join(dir, 'nope.txt')], /corpus path .*nope\.txt.* does not exist/],
    ['empty corpus', ['--corpus', emptyCorpus], /empty/],
    ['unknown flag', ['--stepz', '3'], /stepz/],
    ['unknown optimizer', ['--optimizer', 'adamz'], /unknown optimizer 'adamz'/],
    ['missing config file', ['--config', join(dir, 'missing.json')], /config file .* does not exist/],
  ];
  it.each(cases)('%s', async (_label, args, message) => {
    const { io, out, err } = capture();
    const code = await runCli(['train', ...args, '--report', report], io);
    expect(code).toBe(2);
    expect(out.join('')).toBe('');
    expect(err.length).toBe(1);
    expect(err[0]!.trim().split('\n')).toHaveLength(1);
    expect(err[0]).toMatch(message);
    expect(existsSync(report)).toBe(false);
  });

  it('an unknown command is an error too', async () => {
    const { io, err } = capture();
    expect(await runCli(['trian'], io)).toBe(2);
    expect(err.join('')).toMatch(/unknown command 'trian'/);
    expect(readdirSync(dir).sort()).toEqual(['bad.json', 'empty.txt']);
  });
});
