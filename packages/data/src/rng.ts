const TWO_32 = 0x1_0000_0000;

/**
 * A small seeded PRNG (mulberry32: 32-bit state, period 2^32). Deterministic across platforms:
 * the same seed gives the same sequence. Not for cryptography.
 */
export class Rng {
  private s: number;

  /** `seed` is any safe integer; only its low 32 bits are used. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`Rng seed must be a safe integer, got ${String(seed)}`);
    }
    this.s = seed >>> 0;
  }

  /** Next unsigned 32-bit integer. */
  nextUint32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias. `n` is a positive safe integer. */
  nextInt(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0)
      throw new RangeError(`nextInt bound must be a positive integer, got ${n}`);
    if (n > TWO_32) return Math.floor(this.nextFloat() * n);
    const limit = TWO_32 - (TWO_32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** The internal state (an unsigned 32-bit integer), to save and later resume the exact sequence. */
  get state(): number {
    return this.s;
  }

  set state(value: number) {
    if (!Number.isInteger(value) || value < 0 || value >= TWO_32) {
      throw new RangeError(`Rng state must be an unsigned 32-bit integer, got ${String(value)}`);
    }
    this.s = value;
  }
}
