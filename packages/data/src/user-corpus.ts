import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, extname, join, relative, resolve } from 'node:path';
import { InputError } from '@kstar/core';
import type { Corpus } from './corpus.ts';

/** File extensions read from a folder (recursively). A single file is read whatever its extension. */
export const CORPUS_EXTENSIONS: readonly string[] = ['.txt', '.md', '.jsonl'];

/** Over this share of control bytes (other than tab, newline, carriage return, form feed) a file is binary. */
const MAX_CONTROL_RATIO = 0.01;

/**
 * Read a user corpus: a file (`.jsonl` is JSON Lines with a string `text` per line; anything else is plain
 * UTF-8 text) or a folder (every `.txt`/`.md`/`.jsonl` file below it, recursively, hidden entries skipped,
 * sorted by relative path). Documents are joined by a blank line; `\r\n` becomes `\n`; a leading BOM is
 * dropped. Throws `InputError` for a missing path, a binary or non-UTF-8 file, a malformed JSONL line, a
 * folder with no usable files and an empty corpus.
 */
export function readPathCorpus(path: string): Corpus {
  const abs = resolve(path);
  if (!existsSync(abs)) {
    throw new InputError(
      `corpus path '${path}' does not exist: pass a .txt/.jsonl file or a folder`,
      'E_CORPUS_PATH',
    );
  }
  const st = statSync(abs);
  let files: string[];
  if (st.isDirectory()) {
    files = listCorpusFiles(abs);
    if (files.length === 0) {
      throw new InputError(
        `corpus folder '${path}' has no usable files: it must contain ${CORPUS_EXTENSIONS.join('/')} files (searched recursively, hidden entries skipped)`,
        'E_CORPUS_EMPTY',
      );
    }
  } else if (st.isFile()) {
    files = [abs];
  } else {
    throw new InputError(
      `corpus path '${path}' is neither a file nor a folder: pass a .txt/.jsonl file or a folder`,
      'E_CORPUS_PATH',
    );
  }
  const docs: string[] = [];
  for (const f of files) {
    for (const doc of readCorpusFile(f)) if (doc.trim() !== '') docs.push(doc);
  }
  const text = docs.join('\n\n');
  if (text.trim() === '') {
    throw new InputError(
      `corpus '${path}' is empty (no text after trimming whitespace${files.length > 1 ? ` in ${files.length} files` : ''}): add text or pass another corpus`,
      'E_CORPUS_EMPTY',
    );
  }
  return { name: basename(abs), text, source: abs, files };
}

/** The usable files below `dir`, sorted by relative path (code-unit order) so the order is deterministic. */
function listCorpusFiles(dir: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (d: string): void => {
    const real = realpathSync(d);
    if (seen.has(real)) return; // symlink cycle
    seen.add(real);
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const p = join(d, entry.name);
      let st: ReturnType<typeof statSync>;
      try {
        st = statSync(p);
      } catch {
        continue; // dangling symlink
      }
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && CORPUS_EXTENSIONS.includes(extname(entry.name).toLowerCase())) out.push(p);
    }
  };
  walk(dir);
  return out
    .map((p) => ({ p, key: relative(dir, p) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((e) => e.p);
}

/** Read one file into its documents (one for text, one per non-blank line for JSONL). */
function readCorpusFile(file: string): string[] {
  const text = decodeUtf8Text(readFileSync(file), file);
  if (extname(file).toLowerCase() !== '.jsonl') return [text];
  const docs: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new InputError(
        `corpus file '${file}' line ${i + 1} is not valid JSON (${(e as Error).message}): each line must be an object like {"text": "..."}`,
        'E_CORPUS_JSONL',
      );
    }
    const t = (value as { text?: unknown } | null)?.text;
    if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof t !== 'string') {
      throw new InputError(
        `corpus file '${file}' line ${i + 1} has no string "text" field (got ${preview(line)}): each line must be an object like {"text": "..."}`,
        'E_CORPUS_JSONL',
      );
    }
    docs.push(t.replace(/\r\n?/g, '\n'));
  }
  return docs;
}

/**
 * Decode a file's bytes as UTF-8 text, rejecting binary data (a NUL byte, or more than 1% control bytes) and
 * invalid UTF-8. `file` names the file in the error. `\r\n` and lone `\r` become `\n`; a BOM is dropped.
 */
export function decodeUtf8Text(bytes: Uint8Array, file: string): string {
  let control = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0) {
      throw new InputError(
        `corpus file '${file}' looks binary (NUL byte at offset ${i}): pass UTF-8 text files`,
        'E_CORPUS_BINARY',
      );
    }
    if ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c) || b === 0x7f) control++;
  }
  if (bytes.length > 0 && control / bytes.length > MAX_CONTROL_RATIO) {
    throw new InputError(
      `corpus file '${file}' looks binary (${control} of ${bytes.length} bytes are control characters): pass UTF-8 text files`,
      'E_CORPUS_BINARY',
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    throw new InputError(
      `corpus file '${file}' is not valid UTF-8 (line ${line}, byte offset ${at}): convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8)`,
      'E_CORPUS_ENCODING',
    );
  }
  return text.replace(/\r\n?/g, '\n');
}

/** Offset of the lead byte of the first invalid UTF-8 sequence (Unicode table 3-7), or -1 if valid. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let len: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) len = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      len = 3;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      len = 4;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    } else return i;
    if (i + len > n) return i;
    const b1 = bytes[i + 1];
    if (b1 < lo || b1 > hi) return i;
    for (let k = 2; k < len; k++) {
      const c = bytes[i + k];
      if (c < 0x80 || c > 0xbf) return i;
    }
    i += len;
  }
  return -1;
}

function preview(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
