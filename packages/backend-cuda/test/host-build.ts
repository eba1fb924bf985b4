import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The set-up the *-host tests share: CUDA sources compiled as plain C++ for this machine and run on given inputs.

/** The first of c++, g++, clang++ that runs here, or undefined (the host tests skip). */
export const hostCxx = ['c++', 'g++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);

/** The start of every host build's shims: C headers, one-thread launch indices and no-op CUDA qualifiers. */
export const HOST_SHIMS_HEAD = `#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
struct Dim { long long x, y; };
static Dim blockIdx{0, 0}, threadIdx{0, 0}, gridDim{1, 1}, blockDim{1, 1};
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static
`;

/** One translation unit of CUDA sources, each in its namespace `k_<name>` (their helpers share names). */
export function namespacedUnit(sources: Record<string, string>): string {
  return Object.entries(sources)
    .map(([name, s]) => `namespace k_${name} {\n${s}\n}\n`)
    .join('\n');
}

/** Deterministic float32 values in [lo, hi) (a 32-bit LCG). */
export function floats(n: number, seed: number, lo: number, hi: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s / 2 ** 32) * (hi - lo);
  });
}

/** The raw 32-bit words of a float32 or int32 array. */
export const bitsOf = (a: Float32Array | Int32Array): number[] =>
  Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/**
 * Writes `files` (main.cpp and what it includes) into a fresh temporary folder and compiles main.cpp there with
 * `cxx` and `flags` into `run`; returns the folder (remove it with `removeHostBuild`).
 */
export function buildHost(
  prefix: string,
  files: Record<string, string>,
  cxx: string,
  flags: string[],
): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  execFileSync(cxx, [...flags, '-o', join(dir, 'run'), join(dir, 'main.cpp')], { cwd: dir, stdio: 'pipe' });
  return dir;
}

export const removeHostBuild = (dir: string): void => rmSync(dir, { recursive: true, force: true });

/** Runs the built program with `argv` and `input` on stdin: its output lines as numbers (an empty line: []). */
export function runHost(dir: string, argv: string[], input = ''): number[][] {
  return execFileSync(join(dir, 'run'), argv, { input, encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => (l.trim() === '' ? [] : l.trim().split(' ').map(Number)));
}

/** The first of g++, c++, clang++ with C++20's <barrier> (what `THREADED_SHIMS` needs), or undefined. */
export const threadedCxx = ['g++', 'c++', 'clang++'].find(
  (c) =>
    spawnSync(c, ['-std=c++20', '-x', 'c++', '-fsyntax-only', '-'], { input: '#include <barrier>\n' })
      .status === 0,
);

/**
 * Shims for sources whose blocks cooperate (shared memory, __syncthreads): a block's threads run as std::threads with a
 * std::barrier for __syncthreads, __shared__ arrays one static per block (blocks run one after another). Needs C++20
 * and -pthread; launch with `THREADED_LAUNCH`'s `launch(gx, gy, [&] { kernel(...); })` after setting blockDim.x.
 */
export const THREADED_SHIMS = `#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
struct Dim { int x, y, z; };
static Dim blockIdx{0, 0, 0}, blockDim{1, 1, 1}, gridDim{1, 1, 1};
static thread_local Dim threadIdx{0, 0, 0};
static std::barrier<>* blockBarrier = nullptr;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
static inline void __syncthreads() { blockBarrier->arrive_and_wait(); }
`;

/** `launch(gx, gy, kernel)`: every block of the grid in turn, its blockDim.x threads concurrently. */
export const THREADED_LAUNCH = `// One launch: every block of the grid, its threads concurrently.
template <class F> static void launch(int gx, int gy, F kernel) {
  std::barrier<> bar(blockDim.x);
  blockBarrier = &bar;
  for (blockIdx.y = 0; blockIdx.y < gy; ++blockIdx.y)
    for (blockIdx.x = 0; blockIdx.x < gx; ++blockIdx.x) {
      std::vector<std::thread> ts;
      for (int t = 0; t < blockDim.x; ++t) ts.emplace_back([&, t] { threadIdx.x = t; kernel(); });
      for (auto& th : ts) th.join();
    }
}
`;
