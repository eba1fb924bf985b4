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
struct Dim { long long x; };
static Dim blockIdx{0}, threadIdx{0}, gridDim{1}, blockDim{1};
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
