import { InputError } from '@kstar/core';
import {
  checkLengthBuckets,
  DocumentPacker,
  splitDocuments,
  type TokenDataset,
  type Tokenizer,
} from '@kstar/data';

/** `--length-buckets 64,128,256`: ascending sequence lengths (InputError naming the item otherwise). */
export function parseLengthBuckets(text: string): number[] {
  const buckets = text.split(',').map((item) => {
    const t = item.trim();
    if (!/^\d+$/.test(t) || Number(t) < 1) {
      throw new InputError(
        `--length-buckets item '${t}' is not a positive integer: write ascending sequence lengths, e.g. 64,128,256`,
        'E_CONFIG',
      );
    }
    return Number(t);
  });
  checkLengthBuckets(buckets);
  return buckets;
}

/**
 * `--pack-documents` (with `--length-buckets`, default one bucket of `--seq`): the training split's documents (split at
 * the tokenizer's encoding of a blank line) packed into batches whose length is a bucket (@kstar/data's
 * `DocumentPacker`). Checked against the rest of the run: the longest bucket is the run's `seq` (validation, the
 * memory checks), and a run without packing takes no buckets.
 */
export function packerFor(
  config: {
    packDocuments: boolean;
    lengthBuckets?: string;
    seqSchedule?: string;
    seq?: number;
    seed: number;
  },
  defaultSeq: number,
  tokenizer: Tokenizer,
  dataset: TokenDataset,
): DocumentPacker | undefined {
  if (!config.packDocuments) {
    if (config.lengthBuckets !== undefined) {
      throw new InputError(
        `--length-buckets ${config.lengthBuckets} needs --pack-documents: buckets are the lengths of packed batches; add --pack-documents or drop --length-buckets`,
        'E_CONFIG',
      );
    }
    return undefined;
  }
  if (config.seqSchedule !== undefined) {
    throw new InputError(
      `--pack-documents sets each batch's length from its documents, so --seq-schedule ${config.seqSchedule} cannot also set it: drop one`,
      'E_CONFIG',
    );
  }
  const buckets = config.lengthBuckets
    ? parseLengthBuckets(config.lengthBuckets)
    : [config.seq ?? defaultSeq];
  if (config.seq !== undefined && config.lengthBuckets !== undefined && config.seq !== buckets.at(-1)) {
    throw new InputError(
      `--seq ${config.seq} differs from the longest of --length-buckets ${config.lengthBuckets}: with --pack-documents the longest bucket is the sequence length; drop --seq`,
      'E_CONFIG',
    );
  }
  const separator = tokenizer.encode('\n\n');
  return new DocumentPacker(splitDocuments(dataset.train, separator), buckets, config.seed);
}
