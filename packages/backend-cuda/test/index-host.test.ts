import { expect, it } from 'vitest';
import { elementwiseSource, stridedCopySource } from '../src/sources.ts';
import { buildHost, hostCxx, removeHostBuild, runHost } from './host-build.ts';

// The index arithmetic of the strided-copy (transpose) and broadcasting element-wise kernels, built for the host (one
// thread walking the grid-stride loop) and checked against coordinates computed here. Needs a C++ compiler.
const HARNESS = `#include <cstdio>
#include <cmath>
#include <cstring>
struct Dim { long long x; };
static Dim blockIdx{0}, threadIdx{0}, gridDim{1}, blockDim{1};
#define __global__
#define __restrict__
#define __device__
#define __forceinline__ inline
static float __int_as_float(int v) { float f; memcpy(&f, &v, 4); return f; }
#include "kernels.h"
int main() {
  // Transpose [2,3,4,5] by perm [0,2,1,3]: out shape [2,4,3,5], strides of the input at the permuted axes.
  float x[120]; for (int i = 0; i < 120; ++i) x[i] = (float)i;
  float t[120];
  CopyMeta cm{}; cm.rank = 4; int sh[4] = {2, 4, 3, 5}; long long st[4] = {60, 5, 20, 1};
  for (int d = 0; d < 4; ++d) { cm.shape[d] = sh[d]; cm.strides[d] = st[d]; cm.mods[d] = 0; }
  copy(t, x, 120, 0, cm);
  for (int i = 0; i < 120; ++i) printf("%g ", t[i]); printf("\\n");
  // Add of [2,3,4] and [3,1] (the second broadcast along the last axis: strides [0,1,0]).
  float a[24], b[3], o[24]; for (int i = 0; i < 24; ++i) a[i] = (float)i; for (int i = 0; i < 3; ++i) b[i] = 100.f * (i + 1);
  EwMeta em{}; em.rank = 3; int es[3] = {2, 3, 4};
  for (int d = 0; d < 3; ++d) { em.shape[d] = es[d]; em.strides[0][d] = 0; em.strides[1][d] = d == 1 ? 1 : 0; }
  add(o, a, b, 24, em, 0 | (2 << 2), 0.f, 0.f);
  for (int i = 0; i < 24; ++i) printf("%g ", o[i]); printf("\\n");
}
`;

it.skipIf(!hostCxx)(
  'transpose and broadcast-add index arithmetic, built for the host, match coordinates',
  () => {
    // Both sources start with the same prelude: the second one's is cut (its overloads would clash).
    const add = elementwiseSource('add', ['float', 'float'], 'float', 'a + b');
    const kernels = stridedCopySource('copy', 'float') + add.slice(add.indexOf('struct EwMeta'));
    const dir = buildHost('kstar-index-', { 'kernels.h': kernels, 'main.cpp': HARNESS }, hostCxx!, ['-O1']);
    try {
      const [transposed, added] = runHost(dir, []);
      const wantT: number[] = [];
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 4; j++)
          for (let k = 0; k < 3; k++) for (let l = 0; l < 5; l++) wantT.push(i * 60 + k * 20 + j * 5 + l);
      expect(transposed).toEqual(wantT);
      const wantA: number[] = [];
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 3; j++)
          for (let k = 0; k < 4; k++) wantA.push(i * 12 + j * 4 + k + 100 * (j + 1));
      expect(added).toEqual(wantA);
    } finally {
      removeHostBuild(dir);
    }
  },
);
