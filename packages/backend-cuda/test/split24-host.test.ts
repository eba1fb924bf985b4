import { joinArray, splitArray } from '@kstar/kernels';
import { expect, it } from 'vitest';
import { join24Source, split24Source } from '../src/kstar-sources.ts';
import { buildHost, hostCxx, removeHostBuild, runHost } from './host-build.ts';

// The split24 kernels are integer code: built for the host (one thread walking the whole grid-stride loop) they must
// match @kstar/kernels' cpu kernel bit for bit, special values included. Needs a C++ compiler (skipped without).
const HARNESS = `#include <cstdio>
#include <cstdlib>
struct Dim { long long x; };
static Dim blockIdx{0}, threadIdx{0}, gridDim{1}, blockDim{1};
#define __global__
#define __restrict__
#include "kernels.h"
int main(int argc, char** argv) {
  long long n = atoll(argv[1]), hw = (n + 1) / 2, lw = (n + 3) / 4;
  unsigned int* w = new unsigned int[n];
  for (long long i = 0; i < n; ++i) if (scanf("%u", &w[i]) != 1) return 1;
  int* hi = new int[hw]; int* lo = new int[lw]; unsigned int* r = new unsigned int[n]; unsigned int* e = new unsigned int[n];
  split(hi, lo, w, n); join(r, hi, lo, 1, n); join(e, hi, nullptr, 0, n);
  for (long long i = 0; i < hw; ++i) printf("%d ", hi[i]); printf("\\n");
  for (long long i = 0; i < lw; ++i) printf("%d ", lo[i]); printf("\\n");
  for (long long i = 0; i < n; ++i) printf("%u ", r[i]); printf("\\n");
  for (long long i = 0; i < n; ++i) printf("%u ", e[i]); printf("\\n");
}
`;

it.skipIf(!hostCxx)(
  'split24/join24 CUDA sources, built for the host, equal the cpu kernel bit for bit',
  () => {
    const n = 2051; // odd: partial hi and lo words
    const bits = new Uint32Array(n);
    let s = 12345;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      bits[i] = s;
    }
    // ±0, ±Inf, NaN, the saturation threshold, max finite, subnormals, 1 and its rounding ties.
    const special = [
      0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00001, 0x7f7f8000, 0xff7fffff, 1, 0x80000001,
    ];
    special.push(0x3f800000, 0x3f808000, 0x3f818000, 0x3f80ffff);
    special.forEach((v, k) => {
      bits[k] = v;
    });
    const dir = buildHost(
      'kstar-split24-',
      { 'kernels.h': split24Source('split') + join24Source('join'), 'main.cpp': HARNESS },
      hostCxx!,
      ['-O1'],
    );
    try {
      const lines = runHost(dir, [String(n)], bits.join(' '));
      const hi = new Int32Array(Math.ceil(n / 2));
      const lo = new Int32Array(Math.ceil(n / 4));
      splitArray(bits, hi, lo);
      const r = new Uint32Array(n);
      const e = new Uint32Array(n);
      joinArray(hi, lo, n, r);
      joinArray(hi, null, n, e);
      expect(lines[0]).toEqual(Array.from(hi));
      expect(lines[1]).toEqual(Array.from(lo));
      expect(lines[2]).toEqual(Array.from(r));
      expect(lines[3]).toEqual(Array.from(e));
    } finally {
      removeHostBuild(dir);
    }
  },
);
