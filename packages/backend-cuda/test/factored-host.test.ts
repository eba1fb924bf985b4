import { factoredMomentArrays } from '@kstar/kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FACTORED_CONSTS, kstarFactoredSources } from '../src/kstar-factored-sources.ts';
import {
  bitsOf,
  buildHost,
  floats,
  HOST_SHIMS_HEAD,
  hostCxx,
  namespacedUnit,
  removeHostBuild,
  runHost,
} from './host-build.ts';

// The factored-moment CUDA sources built for the host (blockDim 1; each launch's grid walked block by block), run in
// the order kstar-factored-kernels.ts launches them, against the cpu kernels' float64 formulas: R and C from
// @kstar/kernels' factoredMomentArrays, then Adafactor's and AdaLomo's documented updates written out here (the
// plugins may not be imported). Float tolerance (the summation order differs); LOMO bit for bit. Needs a C++ compiler.

const SHIMS = `${HOST_SHIMS_HEAD}// One thread per block: the other lanes of a sum contribute nothing.
static inline double __shfl_xor_sync(unsigned int, double, int) { return 0.0; }
static inline void __syncthreads() {}
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
`;

const MAIN = `
static float* readF(long long n) {
  float* a = new float[n > 0 ? n : 1];
  for (long long i = 0; i < n; ++i) { unsigned int u; if (scanf("%u", &u) != 1) exit(2); memcpy(&a[i], &u, 4); }
  return a;
}
static void put(const float* a, long long n) {
  for (long long i = 0; i < n; ++i) { unsigned int u; memcpy(&u, &a[i], 4); printf("%u ", u); }
  printf("\\n");
}
#define K(ns) ns::FactoredConsts
int main(int, char** argv) {
  long long B, m, n, N, hasMom;
  double k[${FACTORED_CONSTS.length}];
  if (!strcmp(argv[1], "lomo")) {
    double c[4];
    if (scanf("%lld %lf %lf %lf %lf", &N, &c[0], &c[1], &c[2], &c[3]) != 5) return 2;
    float* p = readF(N); float* g = readF(N);
    k_kstar_lomo::kstar_lomo(p, g, N, c[0], c[1], c[2], c[3]);
    put(p, N);
    return 0;
  }
  if (!strcmp(argv[1], "came")) {
    double k3[${FACTORED_CONSTS.length}];
    if (scanf("%lld %lld %lld", &B, &m, &n) != 3) return 2;
    for (auto& x : k) if (scanf("%lf", &x) != 1) return 2;
    for (auto& x : k3) if (scanf("%lf", &x) != 1) return 2;
    N = B * m * n;
    float* p = readF(N); float* g = readF(N); float* mom = readF(N);
    float* vRow = readF(B * m); float* vCol = readF(B * n); float* resRow = readF(B * m); float* resCol = readF(B * n);
    const long long chunks = (m + 63) / 64, G = 5;
    double* partial = new double[chunks * B * n]; double* sums = new double[2 * G]; double scalars[2];
    double* rmean = new double[B]; double* rmean2 = new double[B];
#define C1(ns) ns::FactoredConsts c1_##ns; memcpy(&c1_##ns, k, sizeof k);
#define C3(ns) ns::FactoredConsts c3_##ns; memcpy(&c3_##ns, k3, sizeof k3);
    C1(k_kstar_factored_rows) C1(k_kstar_factored_col_partial) C1(k_kstar_factored_cols) C1(k_kstar_factored_sums)
    C1(k_kstar_factored_scalars) C1(k_kstar_came_moment) C3(k_kstar_came_res_rows) C3(k_kstar_came_res_col_partial)
    C3(k_kstar_factored_cols) C3(k_kstar_came_update)
    for (blockIdx.x = 0; blockIdx.x < B * m; ++blockIdx.x) k_kstar_factored_rows::kstar_factored_rows(vRow, g, n, c1_k_kstar_factored_rows);
    blockIdx.x = 0;
    k_kstar_factored_col_partial::kstar_factored_col_partial(partial, g, B, m, n, c1_k_kstar_factored_col_partial);
    k_kstar_factored_cols::kstar_factored_cols(vCol, partial, chunks, B * n, m, c1_k_kstar_factored_cols);
    for (blockIdx.x = 0; blockIdx.x < B; ++blockIdx.x) k_kstar_factored_row_mean::kstar_factored_row_mean(rmean, vRow, m);
    gridDim.x = G;
    for (blockIdx.x = 0; blockIdx.x < G; ++blockIdx.x)
      k_kstar_factored_sums::kstar_factored_sums(sums, p, g, vRow, vCol, rmean, nullptr, N, m, n, c1_k_kstar_factored_sums);
    gridDim.x = 1; blockIdx.x = 0;
    k_kstar_factored_scalars::kstar_factored_scalars(scalars, sums, G, N, c1_k_kstar_factored_scalars);
    k_kstar_came_moment::kstar_came_moment(mom, g, vRow, vCol, rmean, nullptr, scalars, N, m, n, c1_k_kstar_came_moment);
    for (blockIdx.x = 0; blockIdx.x < B * m; ++blockIdx.x)
      k_kstar_came_res_rows::kstar_came_res_rows(resRow, g, mom, vRow, vCol, rmean, scalars, m, n, c3_k_kstar_came_res_rows);
    blockIdx.x = 0;
    k_kstar_came_res_col_partial::kstar_came_res_col_partial(partial, g, mom, vRow, vCol, rmean, scalars, B, m, n, c3_k_kstar_came_res_col_partial);
    k_kstar_factored_cols::kstar_factored_cols(resCol, partial, chunks, B * n, m, c3_k_kstar_factored_cols);
    for (blockIdx.x = 0; blockIdx.x < B; ++blockIdx.x) k_kstar_factored_row_mean::kstar_factored_row_mean(rmean2, resRow, m);
    blockIdx.x = 0;
    k_kstar_came_update::kstar_came_update(p, mom, resRow, resCol, rmean2, N, m, n, c3_k_kstar_came_update);
    put(p, N); put(mom, N); put(vRow, B * m); put(vCol, B * n); put(resRow, B * m); put(resCol, B * n);
    return 0;
  }
  if (scanf("%lld %lld %lld %lld", &B, &m, &n, &hasMom) != 4) return 2;
  for (auto& x : k) if (scanf("%lf", &x) != 1) return 2;
  const bool factored = !strcmp(argv[1], "factored");
  N = B * m * n;
  float* p = readF(N); float* g = readF(N);
  float* row = factored ? readF(B * m) : nullptr; float* col = factored ? readF(B * n) : nullptr;
  float* v = factored ? nullptr : readF(N); float* mom = hasMom ? readF(N) : nullptr;
  double* rmean = new double[B];
  const long long chunks = (m + ${64} - 1) / ${64}, G = 7;
  double* partial = new double[chunks * B * n]; double* sums = new double[2 * G]; double scalars[2];
#define CONSTS(ns) ns::FactoredConsts kk_##ns; memcpy(&kk_##ns, k, sizeof k);
  CONSTS(k_kstar_factored_rows) CONSTS(k_kstar_factored_col_partial) CONSTS(k_kstar_factored_cols)
  CONSTS(k_kstar_factored_vector) CONSTS(k_kstar_factored_sums) CONSTS(k_kstar_factored_scalars) CONSTS(k_kstar_factored_update)
  if (factored) {
    for (blockIdx.x = 0; blockIdx.x < B * m; ++blockIdx.x) k_kstar_factored_rows::kstar_factored_rows(row, g, n, kk_k_kstar_factored_rows);
    blockIdx.x = 0;
    k_kstar_factored_col_partial::kstar_factored_col_partial(partial, g, B, m, n, kk_k_kstar_factored_col_partial);
    k_kstar_factored_cols::kstar_factored_cols(col, partial, chunks, B * n, m, kk_k_kstar_factored_cols);
    for (blockIdx.x = 0; blockIdx.x < B; ++blockIdx.x) k_kstar_factored_row_mean::kstar_factored_row_mean(rmean, row, m);
    blockIdx.x = 0;
  } else {
    k_kstar_factored_vector::kstar_factored_vector(v, g, N, kk_k_kstar_factored_vector);
    m = 1; n = N;
  }
  gridDim.x = G;
  for (blockIdx.x = 0; blockIdx.x < G; ++blockIdx.x)
    k_kstar_factored_sums::kstar_factored_sums(sums, p, g, row, col, rmean, v, N, m, n, kk_k_kstar_factored_sums);
  gridDim.x = 1; blockIdx.x = 0;
  k_kstar_factored_scalars::kstar_factored_scalars(scalars, sums, G, N, kk_k_kstar_factored_scalars);
  k_kstar_factored_update::kstar_factored_update(p, mom, g, row, col, rmean, v, scalars, N, m, n, kk_k_kstar_factored_update);
  put(p, N);
  if (factored) { put(row, B * m); put(col, B * n); } else put(v, N);
  if (hasMom) put(mom, N);
}
`;

const cxx = hostCxx;

const fromBits = (xs: number[]) => new Float32Array(Uint32Array.from(xs).buffer);

function expectClose(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++)
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1e-6 + Math.abs(want[i]!)));
  expect(worst, `${what}: worst relative error`).toBeLessThan(1e-5);
}

type Consts = Record<(typeof FACTORED_CONSTS)[number], number>;

/** The cpu kernels' update (Adafactor's updateArrays / AdaLomo's), float64 math, float32 storage. */
function reference(
  dims: { B: number; m: number; n: number },
  factored: boolean,
  k: Consts,
  s: {
    p: Float32Array;
    g: Float32Array;
    row?: Float32Array;
    col?: Float32Array;
    v?: Float32Array;
    mom?: Float32Array;
  },
): void {
  const { p, g } = s;
  const N = p.length;
  const gt = (x: number) => Math.min(k.gclip, Math.max(x, -k.gclip)) * k.gscale;
  let sp = 0;
  for (let i = 0; i < N; i++) sp += p[i]! * p[i]!;
  const alpha = k.scaleByRms ? k.base * Math.max(k.eps2, Math.sqrt(sp / N)) : k.base;
  const U = new Float64Array(N);
  if (factored) {
    const f = factoredMomentArrays(g, s.row!, s.col!, dims, k.beta2t, k.eps1, gt);
    for (let r = 0; r < dims.B * dims.m; r++)
      for (let j = 0; j < dims.n; j++)
        U[r * dims.n + j] = gt(g[r * dims.n + j]!) * f.row[r]! * f.col[Math.floor(r / dims.m) * dims.n + j]!;
  } else {
    for (let i = 0; i < N; i++) {
      const gv = gt(g[i]!);
      s.v![i] = k.beta2t * s.v![i]! + k.omb2t * (gv * gv + k.eps1);
      U[i] = gv / Math.sqrt(s.v![i]!);
    }
  }
  let su = 0;
  for (const u of U) su += u * u;
  const kk = alpha / Math.max(1, Math.sqrt(su / N) / k.clip);
  const decay = k.weightDecay * alpha;
  for (let i = 0; i < N; i++) {
    const pv = p[i]!;
    if (k.lomoForm) p[i] = pv * (1 - decay) - kk * U[i]!;
    else if (k.hasMomentum) {
      s.mom![i] = k.beta1 * s.mom![i]! + (1 - k.beta1) * (kk * U[i]!);
      p[i] = pv - decay * pv - s.mom![i]!;
    } else p[i] = pv - decay * pv - kk * U[i]!;
  }
}

describe.skipIf(!cxx)('factored-moment CUDA sources, built for the host, follow the cpu kernels', () => {
  let dir = '';
  const run = (args: (number | string)[], ...arrays: Float32Array[]): Float32Array[] =>
    runHost(dir, [String(args[0])], [...args.slice(1), ...arrays.flatMap(bitsOf)].join(' ')).map(fromBits);

  beforeAll(() => {
    dir = buildHost(
      'kstar-factored-host-',
      { 'main.cpp': `${SHIMS}${namespacedUnit(kstarFactoredSources())}${MAIN}` },
      cxx!,
      ['-O1'],
    );
  }, 60_000);
  afterAll(() => removeHostBuild(dir));

  const base: Consts = {
    beta2t: 0.8,
    omb2t: 0.2,
    eps1: 1e-30,
    gclip: Number.MAX_VALUE,
    gscale: 1,
    base: 0.01,
    scaleByRms: 1,
    eps2: 1e-3,
    clip: 1,
    weightDecay: 0.01,
    beta1: 0.9,
    hasMomentum: 1,
    lomoForm: 0,
  };
  const argsOf = (k: Consts) => FACTORED_CONSTS.map((c) => k[c]);

  for (const [label, k, B, m, n] of [
    ['Adafactor [2,131,67] with first moment', base, 2, 131, 67],
    [
      'AdaLomo [37,65] clip 1.5 scale 0.7',
      { ...base, gclip: 1.5, gscale: 0.7, hasMomentum: 0, lomoForm: 1 },
      1,
      37,
      65,
    ],
  ] as const) {
    it(label, () => {
      const N = B * m * n;
      const s = {
        p: floats(N, 1, -1, 1),
        g: floats(N, 2, -3, 3),
        row: floats(B * m, 3, 0.01, 1),
        col: floats(B * n, 4, 0.01, 1),
        mom: floats(N, 5, -0.1, 0.1),
      };
      const hasMom = k.hasMomentum;
      const got = run(
        ['factored', B, m, n, hasMom, ...argsOf(k)],
        s.p,
        s.g,
        s.row,
        s.col,
        ...(hasMom ? [s.mom] : []),
      );
      reference({ B, m, n }, true, k, s);
      expectClose(got[0]!, s.p, 'p');
      expectClose(got[1]!, s.row, 'R');
      expectClose(got[2]!, s.col, 'C');
      if (hasMom) expectClose(got[3]!, s.mom, 'first moment');
    });
  }

  it('Adafactor vector [1031] without first moment, no RMS scaling', () => {
    const k = { ...base, hasMomentum: 0, beta1: -1, scaleByRms: 0 };
    const N = 1031;
    const s = { p: floats(N, 6, -1, 1), g: floats(N, 7, -2, 2), v: floats(N, 8, 0.01, 1) };
    const got = run(['vector', 1, 1, N, 0, ...argsOf(k)], s.p, s.g, s.v);
    reference({ B: 1, m: 1, n: N }, false, k, s);
    expectClose(got[0]!, s.p, 'p');
    expectClose(got[1]!, s.v!, 'V');
  });

  it('CAME factored [2,67,45]: the moment, the instability EMAs and the confidence-scaled step', () => {
    const [B, m, n] = [2, 67, 45];
    const N = B * m * n;
    const c = {
      lr: 0.01,
      beta1: 0.9,
      beta2: 0.999,
      beta3: 0.9999,
      eps1: 1e-30,
      eps2: 1e-16,
      clip: 1,
      wdLr: 1e-4,
    };
    const k: Consts = {
      ...base,
      beta2t: c.beta2,
      omb2t: 1 - c.beta2,
      base: 1,
      scaleByRms: 0,
      weightDecay: 0,
    };
    const k3: Consts = {
      ...k,
      beta2t: c.beta3,
      omb2t: 1 - c.beta3,
      eps1: c.eps2,
      base: c.lr,
      weightDecay: c.wdLr,
    };
    const s = {
      p: floats(N, 31, -1, 1),
      g: floats(N, 32, -2, 2),
      m: floats(N, 33, -0.1, 0.1),
      vRow: floats(B * m, 34, 0.01, 1),
      vCol: floats(B * n, 35, 0.01, 1),
      resRow: floats(B * m, 36, 0.01, 1),
      resCol: floats(B * n, 37, 0.01, 1),
    };
    const got = run(
      ['came', B, m, n, ...argsOf(k), ...argsOf(k3)],
      s.p,
      s.g,
      s.m,
      s.vRow,
      s.vCol,
      s.resRow,
      s.resCol,
    );
    // Reference: @kstar/optim-came's cameFactoredArrays (float64 math, float32 storage).
    const dims = { B, m, n };
    const f = factoredMomentArrays(s.g, s.vRow, s.vCol, dims, c.beta2, c.eps1);
    const U = (i: number) => {
      const r = Math.floor(i / n);
      return s.g[i]! * (f.row[r]! * f.col[Math.floor(r / m) * n + (i % n)]!);
    };
    let sumSq = 0;
    for (let i = 0; i < N; i++) sumSq += U(i) ** 2;
    const d = Math.max(1, Math.sqrt(sumSq / N) / c.clip);
    const res = new Float32Array(N);
    for (let i = 0; i < N; i++) {
      s.m[i] = c.beta1 * s.m[i]! + (1 - c.beta1) * (U(i) / d);
      res[i] = (U(i) / d - s.m[i]!) ** 2 + c.eps2;
    }
    const rr = factoredMomentArrays(res.map(Math.sqrt), s.resRow, s.resCol, dims, c.beta3, 0);
    for (let i = 0; i < N; i++) {
      const r = Math.floor(i / n);
      const step = s.m[i]! * (rr.row[r]! * rr.col[Math.floor(r / m) * n + (i % n)]!);
      s.p[i] = s.p[i]! - c.wdLr * s.p[i]! - c.lr * step;
    }
    ['p', 'm', 'vRow', 'vCol', 'resRow', 'resCol'].forEach((key, j) => {
      expectClose(got[j]!, s[key as keyof typeof s], key);
    });
  });

  it('LOMO bit for bit', () => {
    const N = 1003;
    const [p, g] = [floats(N, 9, -1, 1), floats(N, 10, -1, 1)];
    const [lr, decay, gscale, gclip] = [0.01, 0.999, 0.8, 0.5];
    const [got] = run(['lomo', N, lr, decay, gscale, gclip], p, g);
    for (let i = 0; i < N; i++)
      p[i] = p[i]! * decay - lr * (Math.min(gclip, Math.max(g[i]!, -gclip)) * gscale);
    expect(bitsOf(got!)).toEqual(bitsOf(p));
  });
});
