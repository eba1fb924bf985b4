import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '@kstar/core';
import { callUntyped } from '@kstar/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { firstInvalidUtf8, loadCorpus } from '../src/index.ts';

const root = mkdtempSync(join(tmpdir(), 'kstar-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function write(rel: string, content: string | Uint8Array): string {
  const p = join(root, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, content);
  return p;
}

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).exitCode).toBe(2);
    return e as InputError;
  }
  throw new Error('expected an InputError');
}

describe('loadCorpus from a path', () => {
  it('reads a text file, normalising CRLF and dropping a BOM', () => {
    const p = write('one.txt', '\uFEFFhello\r\nwörld\r\n');
    const c = loadCorpus({ kind: 'path', path: p });
    expect(c.text).toBe('hello\nwörld\n');
    expect(c.name).toBe('one.txt');
    expect(c.source).toBe(p);
    expect(c.files).toEqual([p]);
  });

  it('reads a folder recursively in sorted order, only .txt/.md/.jsonl, skipping hidden entries', () => {
    write('dir/b.txt', 'B');
    write('dir/a/z.md', 'AZ');
    write('dir/a/y.jsonl', '{"text":"J1"}\n\n{"text":"J2","id":3}\n');
    write('dir/c.bin', 'ignored');
    write('dir/notes.csv', 'ignored');
    write('dir/.hidden.txt', 'ignored');
    write('dir/.git/x.txt', 'ignored');
    const c = loadCorpus({ kind: 'path', path: join(root, 'dir') });
    expect(c.text).toBe('J1\n\nJ2\n\nAZ\n\nB');
    expect(c.files.map((f) => f.slice(root.length + 5))).toEqual(['a/y.jsonl', 'a/z.md', 'b.txt']);
  });

  it('names the file and line of a bad JSONL line', () => {
    const p = write('bad.jsonl', '{"text":"ok"}\n{"text": 3}\n');
    const e = inputError(() => loadCorpus({ kind: 'path', path: p }));
    expect(e.message).toContain(p);
    expect(e.message).toContain('line 2');
    expect(e.message).toContain('"text"');
    const q = write('bad2.jsonl', '{"text":"ok"}\n\n{"text": "x"\n');
    const e2 = inputError(() => loadCorpus({ kind: 'path', path: q }));
    expect(e2.message).toContain('line 3');
    expect(e2.message).toContain('not valid JSON');
    const r = write('bad3.jsonl', '["text"]\n');
    expect(inputError(() => loadCorpus({ kind: 'path', path: r })).message).toContain('line 1');
  });

  it('rejects a missing path with the documented message', () => {
    const e = inputError(() => loadCorpus({ kind: 'path', path: '/nonexistent/kstar/x' }));
    expect(e.message).toBe(
      "corpus path '/nonexistent/kstar/x' does not exist: pass a .txt/.jsonl file or a folder",
    );
  });

  it('rejects empty corpora and folders without usable files', () => {
    const p = write('empty.txt', '  \n\t\n');
    expect(inputError(() => loadCorpus({ kind: 'path', path: p })).message).toContain('is empty');
    const j = write('empty.jsonl', '{"text":"   "}\n');
    expect(inputError(() => loadCorpus({ kind: 'path', path: j })).message).toContain('is empty');
    write('nofiles/data.csv', 'a,b');
    const d = join(root, 'nofiles');
    expect(inputError(() => loadCorpus({ kind: 'path', path: d })).message).toContain('no usable files');
  });

  it('rejects binary files', () => {
    const nul = write('nul.txt', new Uint8Array([104, 105, 0, 104, 105]));
    const e = inputError(() => loadCorpus({ kind: 'path', path: nul }));
    expect(e.message).toContain('binary');
    expect(e.message).toContain('offset 2');
    const ctrl = new Uint8Array(200).fill(97);
    for (let i = 0; i < 10; i++) ctrl[i * 20] = 1;
    const p = write('ctrl.txt', ctrl);
    expect(inputError(() => loadCorpus({ kind: 'path', path: p })).message).toContain('10 of 200 bytes');
    // A few control bytes in a large file are tolerated.
    const ok = new Uint8Array(1000).fill(97);
    ok[5] = 0x1b;
    expect(loadCorpus({ kind: 'path', path: write('fine.txt', ok) }).text).toHaveLength(1000);
  });

  it('rejects invalid UTF-8 with the line of the bad byte', () => {
    const bytes = new Uint8Array([...new TextEncoder().encode('ok\nline two caf'), 0xe9, 0x20, 0x21]);
    const p = write('latin1.txt', bytes);
    const e = inputError(() => loadCorpus({ kind: 'path', path: p }));
    expect(e.message).toContain('not valid UTF-8');
    expect(e.message).toContain('line 2');
    expect(e.message).toContain('offset 15');
  });

  it('rejects unknown corpus kinds and an empty path', () => {
    inputError(() => callUntyped(loadCorpus, { kind: 'nope' }));
    inputError(() => loadCorpus({ kind: 'path', path: '' }));
  });
});

describe('firstInvalidUtf8', () => {
  it('agrees with a fatal TextDecoder on valid and invalid sequences', () => {
    const cases: number[][] = [
      [0x61, 0xc3, 0xa9],
      [0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80],
      [0x61, 0xc0, 0x80],
      [0xed, 0xa0, 0x80],
      [0x61, 0x62, 0xe2, 0x82],
      [0xf4, 0x90, 0x80, 0x80],
      [0x80],
    ];
    const expected = [-1, -1, 1, 0, 2, 0, 0];
    cases.forEach((c, i) => {
      const bytes = new Uint8Array(c);
      expect(firstInvalidUtf8(bytes)).toBe(expected[i]);
      let valid = true;
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        valid = false;
      }
      expect(valid).toBe(expected[i] === -1);
    });
  });
});
