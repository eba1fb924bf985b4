import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { tileTransposeGrid, tileTransposeSource } from '../src/gemm-align.ts';
import { elementwiseSource, stridedCopySource } from '../src/sources.ts';

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

const cxx = ['c++', 'g++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);

it.skipIf(!cxx)('transpose and broadcast-add index arithmetic, built for the host, match coordinates', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kstar-index-'));
  try {
    // Both sources start with the same prelude: the second one's is cut (its overloads would clash).
    const add = elementwiseSource('add', ['float', 'float'], 'float', 'a + b');
    writeFileSync(
      join(dir, 'kernels.h'),
      stridedCopySource('copy', 'float') + add.slice(add.indexOf('struct EwMeta')),
    );
    writeFileSync(join(dir, 'main.cpp'), HARNESS);
    execFileSync(cxx!, ['-O1', '-o', join(dir, 'run'), join(dir, 'main.cpp')], { cwd: dir, stdio: 'pipe' });
    const [transposed, added] = execFileSync(join(dir, 'run'), { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.trim().split(' ').map(Number));
    const wantT: number[] = [];
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 4; j++)
        for (let k = 0; k < 3; k++) for (let l = 0; l < 5; l++) wantT.push(i * 60 + k * 20 + j * 5 + l);
    expect(transposed).toEqual(wantT);
    const wantA: number[] = [];
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) wantA.push(i * 12 + j * 4 + k + 100 * (j + 1));
    expect(added).toEqual(wantA);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The tile transpose uses shared memory and __syncthreads: built for the host with one std::thread per CUDA thread
// and a std::barrier, block after block.
const TILE_HARNESS = `#include <barrier>
#include <cstdio>
#include <thread>
#include <vector>
struct Dim { unsigned x, y, z; };
static Dim blockIdx, gridDim;
static thread_local Dim threadIdx;
static std::barrier<>* bar;
#define __global__
#define __restrict__
#define __shared__ static
#define __syncthreads() bar->arrive_and_wait()
#include "kernels.h"
int main() {
  const int batch = 2, rows = 37, cols = 45;
  std::vector<float> in(batch * rows * cols), out(batch * rows * cols, -1.f);
  for (size_t i = 0; i < in.size(); ++i) in[i] = (float)i;
  for (unsigned z = 0; z < batch; ++z)
    for (unsigned y = 0; y < (rows + 31) / 32; ++y)
      for (unsigned x = 0; x < (cols + 31) / 32; ++x) {
        blockIdx = {x, y, z};
        std::barrier<> b(256); bar = &b;
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < 256; ++t) ts.emplace_back([&, t] { threadIdx = {t, 0, 0}; tile_transpose(out.data(), in.data(), rows, cols); });
        for (auto& t : ts) t.join();
      }
  for (float v : out) printf("%g ", v);
  printf("\\n");
}
`;

it.skipIf(!cxx)(
  'the tile transpose (shared memory, 32×32 tiles), built for the host, transposes ragged edges',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'kstar-tile-'));
    try {
      writeFileSync(join(dir, 'kernels.h'), tileTransposeSource('tile_transpose'));
      writeFileSync(join(dir, 'main.cpp'), TILE_HARNESS);
      execFileSync(cxx!, ['-std=c++20', '-O1', '-pthread', '-o', join(dir, 'run'), join(dir, 'main.cpp')], {
        cwd: dir,
        stdio: 'pipe',
      });
      const got = execFileSync(join(dir, 'run'), { encoding: 'utf8' }).trim().split(' ').map(Number);
      const [batch, rows, cols] = [2, 37, 45];
      const want: number[] = [];
      for (let z = 0; z < batch; z++)
        for (let c = 0; c < cols; c++)
          for (let r = 0; r < rows; r++) want.push(z * rows * cols + r * cols + c);
      expect(got).toEqual(want);
      expect(tileTransposeGrid(batch, rows, cols)).toEqual({ x: 2, y: 2, z: 2 });
      expect(tileTransposeGrid(70000, 4, 4)).toBeNull(); // z over the driver's limit
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
