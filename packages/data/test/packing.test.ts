import { describe, expect, it } from 'vitest';
import { DocumentPacker, splitDocuments } from '../src/packing.ts';
import { Rng } from '../src/rng.ts';

const SEP = [1, 1];

/** Documents of seeded lengths 3..300; document i's tokens are all `i + 2` (so a row shows whose tokens it holds). */
function corpus(count: number): { tokens: Int32Array; lengths: number[] } {
  const rng = new Rng(7);
  const lengths = Array.from({ length: count }, () => 1 + rng.nextInt(298));
  const parts = lengths.flatMap((n, i) => [...Array(n).fill(i + 2), ...SEP]);
  return { tokens: Int32Array.from(parts), lengths };
}

describe('DocumentPacker', () => {
  it('splits at the separator, keeping it, and drops empty documents', () => {
    const docs = splitDocuments(Int32Array.from([5, 1, 1, 1, 1, 6, 7, 1, 1, 8]), SEP);
    expect(docs.map((d) => [...d])).toEqual([[5, 1, 1], [6, 7, 1, 1], [8]]);
  });

  it('covers every document token once per epoch, in bucket-length rows, and resumes exactly', () => {
    const { tokens, lengths } = corpus(40);
    const docs = splitDocuments(tokens, SEP);
    expect(docs.length).toBe(40);
    const buckets = [64, 128, 256];
    const packer = new DocumentPacker(docs, buckets, 3);
    const B = 2;
    const inputs: number[] = [];
    const seen = new Set<number>();
    let saved: { state: number; next: number[] } | undefined;
    while (inputs.length < packer.epochTokens) {
      const w = packer.nextWindows(B);
      expect(buckets).toContain(w.T); // rows never exceed a bucket
      seen.add(w.T);
      for (let b = 0; b < B; b++) {
        const row = w.data.subarray(b * (w.T + 1), (b + 1) * (w.T + 1));
        inputs.push(...row.subarray(0, w.T));
        // The row's last token (the last target) is the next row's first input: the stream without gaps.
        if (b + 1 < B) expect(row[w.T]).toBe(w.data[(b + 1) * (w.T + 1)]);
      }
      if (!saved && inputs.length > 500)
        saved = { state: packer.rngState, next: [...packer.nextWindows(B).data] };
      if (saved && saved.next.length > 0 && packer.rngState !== saved.state) {
        // (the saved batch was drawn: count its inputs too)
        const T = saved.next.length / B - 1;
        for (let b = 0; b < B; b++) inputs.push(...saved.next.slice(b * (T + 1), b * (T + 1) + T));
        const again = new DocumentPacker(docs, buckets, 3);
        again.rngState = saved.state;
        expect([...again.nextWindows(B).data]).toEqual(saved.next);
        saved.next = [];
      }
    }
    expect(seen.size).toBeGreaterThan(1); // short and long documents make batches of several lengths
    // The first epoch's inputs are the documents, each whole and once, in some order.
    const epoch = inputs.slice(0, packer.epochTokens);
    const counts = new Map<number, number>();
    for (const t of epoch) if (t >= 2) counts.set(t, (counts.get(t) ?? 0) + 1);
    expect(counts.size).toBe(40);
    for (const [i, n] of lengths.entries()) expect(counts.get(i + 2)).toBe(n);
    // Contiguous: each document's tokens form one run in the stream.
    const runs = epoch.filter((t, k) => t >= 2 && epoch[k - 1] !== t);
    expect(new Set(runs).size).toBe(runs.length);
  });

  it('is deterministic from the seed', () => {
    const docs = splitDocuments(corpus(10).tokens, SEP);
    const a = new DocumentPacker(docs, [32, 64], 5).nextWindows(2).data;
    const b = new DocumentPacker(docs, [32, 64], 5).nextWindows(2).data;
    const c = new DocumentPacker(docs, [32, 64], 6).nextWindows(2).data;
    expect([...a]).toEqual([...b]);
    expect([...a]).not.toEqual([...c]);
  });

  it('refuses buckets that are not ascending positive integers, naming the bucket', () => {
    const docs = splitDocuments(corpus(3).tokens, SEP);
    expect(() => new DocumentPacker(docs, [64, 32])).toThrow(/length bucket 32 \(of 64,32\)/);
    expect(() => new DocumentPacker(docs, [])).toThrow(/length buckets are empty/);
  });
});
