import { flashAttentionGradKernel, flashAttentionKernel } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FLASH_BLOCK,
  FLASH_ROWDOT,
  flashKernelName,
  flashSources,
  flashTile,
} from '../src/kstar-flash-sources.ts';
import {
  buildHost,
  floats,
  namespacedUnit,
  removeHostBuild,
  runHost,
  THREADED_LAUNCH,
  THREADED_SHIMS,
  threadedCxx,
} from './host-build.ts';

// The fused attention's CUDA sources built for the host: each CUDA block runs as blockDim std::threads (a std::barrier
// for __syncthreads, the __shared__ tiles one static array per block), blocks one after another, in the order
// kstar-flash-kernels.ts launches them, against @kstar/kernels' KstarFlashAttention and its gradient on the tfjs cpu
// backend. Two builds: a small head dim and tile with 4 threads a block (several key and query tiles on an odd T, a
// block straddling the end) and the GPU's own configuration for GPT-2 (hd 64, its tile, FLASH_BLOCK threads).
// Needs a C++20 compiler (skipped without).

interface HostConfig {
  hd: number;
  tile: number;
  threads: number;
}
const SMALL: HostConfig = { hd: 8, tile: 5, threads: 4 };
const GPU_GPT2: HostConfig = { hd: 64, tile: flashTile(64), threads: FLASH_BLOCK };
const CONFIGS = [SMALL, GPU_GPT2];

/** The five launches of one configuration, as kstar-flash-kernels.ts queues them. */
function runConfig(c: HostConfig): string {
  const k = (kind: 'fwd' | 'dq' | 'dk' | 'dv') =>
    `k_${flashKernelName(kind, c.hd, c.tile)}::${flashKernelName(kind, c.hd, c.tile)}`;
  return `if (hd == ${c.hd} && tile == ${c.tile}) {
    blockDim.x = ${c.threads};
    const int gq = (Tq + blockDim.x - 1) / blockDim.x, gk = (Tk + blockDim.x - 1) / blockDim.x;
    launch(gq, bh, [&] { ${k('fwd')}(o, lse, q, k, v, Tq, Tk, off, scale); });
    blockDim.x = 1;
    launch(1, 1, [&] { k_${FLASH_ROWDOT}::${FLASH_ROWDOT}(D, o, g, (long long)bh * Tq, hd); });
    blockDim.x = ${c.threads};
    launch(gq, bh, [&] { ${k('dq')}(dq, q, k, v, g, lse, D, Tq, Tk, off, scale); });
    launch(gk, bh, [&] { ${k('dk')}(dk, q, k, v, g, lse, D, Tq, Tk, off, scale); });
    launch(gk, bh, [&] { ${k('dv')}(dv, q, k, v, g, lse, D, Tq, Tk, off, scale); });
  } else `;
}

const MAIN = `
${THREADED_LAUNCH}static float* readF(long long n) {
  float* a = new float[n > 0 ? n : 1];
  for (long long i = 0; i < n; ++i) if (scanf("%f", &a[i]) != 1) exit(2);
  return a;
}
static void put(const float* a, long long n) {
  for (long long i = 0; i < n; ++i) printf("%.9g ", a[i]);
  printf("\\n");
}
int main() {
  int hd, tile, bh, Tq, Tk, off; float scale;
  if (scanf("%d %d %d %d %d %d %f", &hd, &tile, &bh, &Tq, &Tk, &off, &scale) != 7) return 2;
  const long long nq = (long long)bh * Tq * hd, nk = (long long)bh * Tk * hd;
  float *q = readF(nq), *k = readF(nk), *v = readF(nk), *g = readF(nq);
  float *o = new float[nq], *lse = new float[bh * Tq], *D = new float[bh * Tq];
  float *dq = new float[nq], *dk = new float[nk], *dv = new float[nk];
  ${CONFIGS.map(runConfig).join('')}{ return 3; }
  put(o, nq); put(lse, bh * Tq); put(dq, nq); put(dk, nk); put(dv, nk);
}
`;

const cxx = threadedCxx;

/** Element-wise float32 closeness: |a − b| ≤ 2e-6 + 2e-5·|b| (the summation orders differ). */
function expectClose(name: string, got: number[], want: Float32Array): void {
  expect(got.length, `${name} length`).toBe(want.length);
  let worst = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!) - (2e-6 + 2e-5 * Math.abs(want[i]!));
    if (!(err <= 0) && worst < 0) worst = i;
  }
  expect(worst < 0 ? null : `${name}[${worst}] = ${got[worst]}, cpu ${want[worst]}`).toBeNull();
}

describe.skipIf(!cxx)('fused attention CUDA sources, built for the host, equal the cpu kernel', () => {
  let dir = '';
  beforeAll(async () => {
    await tf.setBackend('cpu');
    const sources: Record<string, string> = Object.assign(
      {},
      ...CONFIGS.map((c) => flashSources(c.hd, c.tile)),
    );
    dir = buildHost(
      'kstar-flash-host-',
      { 'main.cpp': `${THREADED_SHIMS}${namespacedUnit(sources)}${MAIN}` },
      cxx!,
      ['-std=c++20', '-O1', '-pthread'],
    );
  }, 60_000);
  afterAll(() => removeHostBuild(dir));

  // [B, H, Tq, Tk], query offset, build. Small: the whole sequence (T = 37: 8 key tiles, 10 blocks, the last one
  // partial) and the last 9 queries of 29 keys (MsT's query chunk). GPU configuration: T = 70 (two key tiles, two
  // blocks, the second partial) and a query chunk whose block sees 2 key tiles.
  for (const [shape, off, c] of [
    [[2, 3, 37, 37], 0, SMALL],
    [[1, 2, 9, 29], 20, SMALL],
    [[1, 2, 70, 70], 0, GPU_GPT2],
    [[2, 1, 21, 90], 69, GPU_GPT2],
  ] as const) {
    it(`o, lse, dq, dk, dv on [${shape}] hd ${c.hd}, offset ${off}, tile ${c.tile}, ${c.threads} threads a block`, () => {
      const [B, H, tq, tk] = shape;
      const HD = c.hd;
      const scale = 1 / Math.sqrt(HD);
      const [qa, ka, va, ga] = [
        floats(B * H * tq * HD, 1, -2, 2),
        floats(B * H * tk * HD, 2, -2, 2),
        floats(B * H * tk * HD, 3, -1, 1),
        floats(B * H * tq * HD, 4, -1, 1),
      ];
      const out = runHost(
        dir,
        [],
        [HD, c.tile, B * H, tq, tk, off, scale, ...qa, ...ka, ...va, ...ga].join(' '),
      );
      const q = tf.tensor4d(qa, [B, H, tq, HD]);
      const k = tf.tensor4d(ka, [B, H, tk, HD]);
      const v = tf.tensor4d(va, [B, H, tk, HD]);
      const dO = tf.tensor4d(ga, [B, H, tq, HD]);
      const args = { q, k, v, scale, queryOffset: off };
      const { o, lse } = flashAttentionKernel.run(args);
      const g = flashAttentionGradKernel.run({ ...args, o, lse, dO });
      const want = [o, lse, g.dq, g.dk, g.dv];
      ['o', 'lse', 'dq', 'dk', 'dv'].forEach((name, n) => {
        expectClose(name, out[n]!, want[n]!.dataSync() as Float32Array);
      });
      tf.dispose([q, k, v, dO, ...want]);
    });
  }
});
