import { describe, expect, it } from 'vitest';
import { Rng } from '../src/index.ts';

describe('Rng (mulberry32)', () => {
  it('matches the reference mulberry32 sequence for seed 0', () => {
    // Reference: the public-domain mulberry32 by Tommy Ettinger, first outputs for seed 0.
    const r = new Rng(0);
    const ref = (seed: number) => {
      let a = seed >>> 0;
      return () => {
        a = (a + 0x6d2b79f5) | 0;
        let t = Math.imul(a ^ (a >>> 15), 1 | a);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return (t ^ (t >>> 14)) >>> 0;
      };
    };
    const g = ref(0);
    for (let i = 0; i < 5; i++) expect(r.nextUint32()).toBe(g());
    expect(new Rng(0).nextUint32()).toBe(1144304738);
  });

  it('is deterministic per seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 8 }, () => a.nextUint32());
    expect(Array.from({ length: 8 }, () => b.nextUint32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.nextUint32())).not.toEqual(sa);
  });

  it('draws integers in range, roughly uniformly', () => {
    const r = new Rng(7);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const x = r.nextInt(10);
      expect(x >= 0 && x < 10 && Number.isInteger(x)).toBe(true);
      counts[x]++;
    }
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
    for (let i = 0; i < 1000; i++) {
      const f = r.nextFloat();
      expect(f >= 0 && f < 1).toBe(true);
    }
    expect(() => r.nextInt(0)).toThrow(RangeError);
  });

  it('saves and restores its state', () => {
    const r = new Rng(5);
    r.nextUint32();
    const s = r.state;
    const next = [r.nextUint32(), r.nextUint32()];
    r.state = s;
    expect([r.nextUint32(), r.nextUint32()]).toEqual(next);
  });
});
