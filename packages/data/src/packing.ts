import type { Batch } from '@kstar/core';
import { InputError } from '@kstar/core';
import { type Windows, windowsToBatch } from './dataset.ts';
import { Rng } from './rng.ts';

/**
 * Split `tokens` into documents at each occurrence of `separator` (the tokenizer's encoding of a blank line, `\n\n`:
 * corpora join their documents with one). Each document keeps its trailing separator, so the documents concatenated
 * are `tokens` again; empty documents (separators in a row) are dropped.
 */
export function splitDocuments(tokens: Int32Array, separator: ArrayLike<number>): Int32Array[] {
  if (separator.length === 0) throw new RangeError('document separator must hold at least one token');
  const docs: Int32Array[] = [];
  let start = 0;
  const S = separator.length;
  for (let i = 0; i + S <= tokens.length; ) {
    let match = true;
    for (let k = 0; k < S && match; k++) match = tokens[i + k] === separator[k];
    if (!match) {
      i++;
      continue;
    }
    i += S;
    if (i - start > S) docs.push(tokens.subarray(start, i));
    start = i;
  }
  if (start < tokens.length) docs.push(tokens.subarray(start));
  return docs;
}

/** Check length buckets: ascending positive integers (InputError naming the bucket otherwise). */
export function checkLengthBuckets(buckets: readonly number[]): void {
  if (buckets.length === 0) {
    throw new InputError(
      'length buckets are empty: give ascending sequence lengths, e.g. 64,128,256',
      'E_CONFIG',
    );
  }
  for (const [i, b] of buckets.entries()) {
    if (!(Number.isInteger(b) && b >= 1) || (i > 0 && b <= buckets[i - 1]!)) {
      throw new InputError(
        `length bucket ${String(b)} (of ${buckets.join(',')}) is not an integer above the one before it: give ascending sequence lengths ≥ 1, e.g. 64,128,256`,
        'E_CONFIG',
      );
    }
  }
}

/**
 * Document-packed training batches of variable length. The documents are shuffled per epoch (a permutation seeded by
 * the seed and the epoch) and concatenated into one stream, epoch after epoch. A batch of `B` rows takes the next
 * `B · T` stream tokens as inputs, row after row, with targets shifted by one: every token is an input exactly once
 * per epoch. `T` is the smallest bucket that holds the longest of the next `B` documents (from the current
 * position), or the largest bucket: short documents make short batches. Rows are cut exactly at `T` (no padding:
 * the GPT's loss has no ignore index), so a document longer than the room left in its row continues in the next row.
 *
 * The whole sampler state is the stream position (`rngState`, a safe integer): saving and restoring it resumes the
 * exact batch sequence.
 */
export class DocumentPacker {
  readonly documents: readonly Int32Array[];
  readonly buckets: readonly number[];
  readonly seed: number;
  /** Tokens in one epoch (all documents). */
  readonly epochTokens: number;
  private position = 0;
  private cachedEpoch = -1;
  private order: Int32Array = new Int32Array(0);
  /** `starts[i]`: the epoch offset where the i-th document of `order` begins (`starts[n] = epochTokens`). */
  private starts: Float64Array = new Float64Array(0);

  constructor(documents: readonly Int32Array[], buckets: readonly number[], seed = 0) {
    checkLengthBuckets(buckets);
    if (documents.length === 0 || documents.every((d) => d.length === 0)) {
      throw new InputError(
        'the corpus holds no document to pack: use a corpus with text',
        'E_CORPUS_TOO_SHORT',
      );
    }
    this.documents = documents.filter((d) => d.length > 0);
    this.buckets = buckets;
    this.seed = seed;
    this.epochTokens = this.documents.reduce((a, d) => a + d.length, 0);
  }

  /** The stream position: the sampler's whole state, for checkpoints. */
  get rngState(): number {
    return this.position;
  }

  set rngState(value: number) {
    if (!(Number.isSafeInteger(value) && value >= 0)) {
      throw new RangeError(`packed sampler state must be a non-negative integer, got ${String(value)}`);
    }
    this.position = value;
  }

  /** Document order of `epoch`: a Fisher–Yates permutation seeded by (seed, epoch). */
  epochOrder(epoch: number): Int32Array {
    const n = this.documents.length;
    const rng = new Rng(((this.seed >>> 0) ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
    const order = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.nextInt(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return order;
  }

  private useEpoch(epoch: number): void {
    if (epoch === this.cachedEpoch) return;
    this.order = this.epochOrder(epoch);
    this.starts = new Float64Array(this.order.length + 1);
    for (let i = 0; i < this.order.length; i++)
      this.starts[i + 1] = this.starts[i]! + this.documents[this.order[i]!]!.length;
    this.cachedEpoch = epoch;
  }

  /** Index into the epoch's order of the document holding epoch offset `at` (binary search). */
  private docAt(at: number): number {
    let lo = 0;
    let hi = this.order.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The length of the next batch of `B` rows (from the current position; does not advance). */
  nextLength(B: number): number {
    let p = this.position;
    let longest = 0;
    for (let k = 0; k < B; k++) {
      const epoch = Math.floor(p / this.epochTokens);
      this.useEpoch(epoch);
      const at = p - epoch * this.epochTokens;
      const i = this.docAt(at);
      const rest = this.starts[i + 1]! - at; // the first document may have begun in an earlier batch
      longest = Math.max(longest, rest);
      p += rest;
    }
    return this.buckets.find((b) => b >= longest) ?? this.buckets.at(-1)!;
  }

  /** Copy `count` stream tokens from stream position `from` into `out` at `to`. */
  private copyStream(from: number, count: number, out: Int32Array, to: number): void {
    let p = from;
    let done = 0;
    while (done < count) {
      const epoch = Math.floor(p / this.epochTokens);
      this.useEpoch(epoch);
      const at = p - epoch * this.epochTokens;
      const i = this.docAt(at);
      const doc = this.documents[this.order[i]!]!;
      const offset = at - this.starts[i]!;
      const n = Math.min(doc.length - offset, count - done);
      out.set(doc.subarray(offset, offset + n), to + done);
      done += n;
      p += n;
    }
  }

  /**
   * The next `B` rows of `T + 1` stream tokens (`T` defaults to `nextLength(B)`; a caller that draws several
   * micro-batches for one step passes the same `T`); advances the position by `B · T`.
   */
  nextWindows(B: number, T = this.nextLength(B)): Windows {
    if (!Number.isInteger(B) || B < 1) {
      throw new InputError(`batch size must be a positive integer, got ${String(B)}`, 'E_BATCH');
    }
    const W = T + 1;
    const data = new Int32Array(B * W);
    for (let b = 0; b < B; b++) this.copyStream(this.position + b * T, W, data, b * W);
    this.position += B * T;
    return { B, T, data };
  }

  /** One packed training batch: int32 tensors [B, T]. The caller disposes `inputs` and `targets`. */
  trainBatch(B: number, T?: number): Batch {
    return windowsToBatch(this.nextWindows(B, T));
  }
}
