export type { BrownProvenance } from './brown.ts';
export { BROWN_CITATION, brownCorpus, brownProvenance, stripBrownTags } from './brown.ts';
export type { Corpus, CorpusSpec } from './corpus.ts';
export type { TokenDatasetOptions, Windows } from './dataset.ts';
export {
  minTokensFor,
  splitIndex,
  splitWindows,
  TokenDataset,
  VAL_FRACTION,
  windowsToBatch,
} from './dataset.ts';
export { loadCorpus } from './load.ts';
export { checkLengthBuckets, DocumentPacker, splitDocuments } from './packing.ts';
export { Rng } from './rng.ts';
export { textStreamer } from './text-streamer.ts';
export type { Tokenizer, TokenizerName } from './tokenizer.ts';
export { ByteTokenizer, createTokenizer, Gpt2Tokenizer, TOKENIZER_NAMES } from './tokenizer.ts';
export { CORPUS_EXTENSIONS, decodeUtf8Text, firstInvalidUtf8, readPathCorpus } from './user-corpus.ts';
