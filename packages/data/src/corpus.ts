/** A loaded text corpus: the whole text in memory plus where it came from. */
export interface Corpus {
  /** Short name: `brown` for the default corpus, else the base name of the file or folder. */
  readonly name: string;
  /** The plain text (UTF-8 decoded, `\r\n` normalised to `\n`, documents joined by a blank line). */
  readonly text: string;
  /** Human-readable provenance: the package and version, or the absolute path that was read. */
  readonly source: string;
  /** The files read, in the order they were concatenated (absolute paths). */
  readonly files: readonly string[];
}

/** What to load: the embedded Brown corpus, or a user file or folder. */
export type CorpusSpec = { readonly kind: 'brown' } | { readonly kind: 'path'; readonly path: string };
