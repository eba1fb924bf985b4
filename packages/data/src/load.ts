import { InputError } from '@kstar/core';
import { brownCorpus } from './brown.ts';
import type { Corpus, CorpusSpec } from './corpus.ts';
import { readPathCorpus } from './user-corpus.ts';

/**
 * Load a corpus: `{ kind: 'brown' }` is the embedded Brown corpus (cached after the first call);
 * `{ kind: 'path', path }` reads a file or folder (see `readPathCorpus`). Throws `InputError` for bad input.
 */
export function loadCorpus(spec: CorpusSpec): Corpus {
  switch (spec?.kind) {
    case 'brown':
      return brownCorpus();
    case 'path':
      if (typeof spec.path !== 'string' || spec.path === '') {
        throw new InputError(
          `corpus path must be a non-empty string, got ${JSON.stringify(spec.path)}: pass a .txt/.jsonl file or a folder`,
          'E_CORPUS_PATH',
        );
      }
      return readPathCorpus(spec.path);
    default:
      throw new InputError(
        `unknown corpus kind ${JSON.stringify((spec as { kind?: unknown } | undefined)?.kind)}: use { kind: 'brown' } or { kind: 'path', path }`,
        'E_CORPUS_KIND',
      );
  }
}
