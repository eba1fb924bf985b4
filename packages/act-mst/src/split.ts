/** A half-open row range [start, start + size). */
export interface Range {
  readonly start: number;
  readonly size: number;
}

/**
 * Split n rows into `chunks` balanced ranges (sizes differ by at most one, larger first; tensor_split semantics), so
 * every row is covered whatever n is (no dropped tail, unlike the reference's `n // M` slices). Chunks are clamped to n.
 */
export function splitBalanced(n: number, chunks: number): Range[] {
  const m = Math.max(1, Math.min(chunks, n));
  const base = Math.floor(n / m);
  const extra = n % m;
  const out: Range[] = [];
  let start = 0;
  for (let i = 0; i < m; i++) {
    const size = base + (i < extra ? 1 : 0);
    out.push({ start, size });
    start += size;
  }
  return out;
}

/** Split n rows into ranges of `size` rows, the last one a shorter tail when size does not divide n. */
export function splitBySize(n: number, size: number): Range[] {
  const s = Math.max(1, Math.min(size, n));
  const out: Range[] = [];
  for (let start = 0; start < n; start += s) out.push({ start, size: Math.min(s, n - start) });
  return out;
}
