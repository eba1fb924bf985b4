/** mulberry32: a small seeded PRNG, so the random tests are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Approximately normal samples (sum of four uniforms, unit variance), scaled. */
export function randn(next: () => number, n: number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() + next() + next() + next() - 2) * Math.sqrt(3) * scale;
  return out;
}

/** `randn` rounded to float32 (what a float32 tensor of the samples holds). */
export function randn32(next: () => number, n: number, scale = 1): Float32Array {
  return Float32Array.from(randn(next, n, scale));
}
