import {
  adamStepConstants,
  blockAbsmax,
  dequantizeArray,
  dequantizeValue,
  dynamicMap,
  packArray,
  quantizeArray,
  quantizeValue,
  unpackArray,
} from '@kstar/kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAM8_CONSTS, kstarOptimSources } from '../src/kstar-optim-sources.ts';
import { ADAMW_CONSTS } from '../src/kstar-sources.ts';
import * as host from './host-build.ts';

// The 8-bit and Adagrad CUDA sources are integer and rounding code: built for the host (one thread walking each
// grid-stride loop, one "thread" per CUDA block for the absmax reductions) they must equal @kstar/kernels' cpu
// functions bit for bit. Adam8bit and Adagrad live in plugins this package may not import: their references here
// are the cpu kernels' documented float64 formulas written out from @kstar/kernels' quantize primitives.
// Needs a C++ compiler (skipped without).

const SHIMS = `${host.HOST_SHIMS_HEAD}static inline float __uint_as_float(unsigned int u) { float f; memcpy(&f, &u, 4); return f; }
static inline unsigned int __float_as_uint(float f) { unsigned int u; memcpy(&u, &f, 4); return u; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __dsqrt_rn(double a) { return sqrt(a); }
static inline float __shfl_xor_sync(unsigned int, float v, int) { return v; }
static inline void __syncthreads() {}
`;

const MAIN = `
static unsigned int* readBits(long long n) {
  unsigned int* a = new unsigned int[n > 0 ? n : 1];
  for (long long i = 0; i < n; ++i) if (scanf("%u", &a[i]) != 1) exit(2);
  return a;
}
static void put(const void* a, long long n) {
  const unsigned int* u = (const unsigned int*)a;
  for (long long i = 0; i < n; ++i) printf("%u ", u[i]);
  printf("\\n");
}
int main(int, char** argv) {
  long long n, B, r, d, nb, w;
  int s, fix, bits, inside;
  if (!strcmp(argv[1], "quant")) {
    if (scanf("%lld %lld %d %d", &n, &B, &s, &fix) != 4) return 2;
    float* x = (float*)readBits(n);
    nb = (n + B - 1) / B; w = (n + 3) / 4;
    float* am = new float[nb]; int* c = new int[w]; float* out = new float[n];
    for (blockIdx.x = 0; blockIdx.x < nb; ++blockIdx.x) k_kstar_quant_absmax::kstar_quant_absmax(am, x, n, B);
    blockIdx.x = 0;
    k_kstar_quant_codes::kstar_quant_codes(c, x, am, n, B, s, fix);
    k_kstar_dequant::kstar_dequant(out, c, am, n, B, s);
    put(am, nb); put(c, w); put(out, n);
  } else if (!strcmp(argv[1], "pack")) {
    if (scanf("%lld %d", &n, &bits) != 2) return 2;
    int* v = (int*)readBits(n);
    w = (n + 32 / bits - 1) / (32 / bits);
    int* packed = new int[w]; int* back = new int[n];
    k_kstar_pack::kstar_pack(packed, v, n, bits);
    k_kstar_unpack::kstar_unpack(back, packed, n, bits);
    put(packed, w); put(back, n);
  } else if (!strcmp(argv[1], "adam8bit")) {
    double k[8];
    if (scanf("%lld %lld", &n, &B) != 2) return 2;
    for (int j = 0; j < 8; ++j) if (scanf("%lf", &k[j]) != 1) return 2;
    nb = (n + B - 1) / B; w = (n + 3) / 4;
    float* p = (float*)readBits(n); float* g = (float*)readBits(n);
    int* c1 = (int*)readBits(w); float* a1 = (float*)readBits(nb);
    int* c2 = (int*)readBits(w); float* a2 = (float*)readBits(nb);
    float* t = new float[2 * nb];
    k_kstar_adam8bit_absmax::Adam8Consts k1; memcpy(&k1, k, sizeof k);
    k_kstar_adam8bit_update::Adam8Consts k2; memcpy(&k2, k, sizeof k);
    for (blockIdx.x = 0; blockIdx.x < nb; ++blockIdx.x)
      k_kstar_adam8bit_absmax::kstar_adam8bit_absmax(t, g, c1, a1, c2, a2, n, B, nb, k1);
    blockIdx.x = 0;
    k_kstar_adam8bit_update::kstar_adam8bit_update(p, g, c1, a1, c2, a2, t, n, B, nb, k2);
    memcpy(a1, t, 4 * nb); memcpy(a2, t + nb, 4 * nb);
    put(p, n); put(c1, w); put(a1, nb); put(c2, w); put(a2, nb);
  } else if (!strcmp(argv[1], "adagrad")) {
    double k[2];
    long long nAcc;
    if (scanf("%lld %lld %lld %lld %lf %lf %d", &n, &r, &d, &nAcc, &k[0], &k[1], &inside) != 7) return 2;
    float* p = (float*)readBits(n); float* g = (float*)readBits(n); float* acc = (float*)readBits(nAcc);
    int* rows = (int*)readBits(r < 0 ? 0 : r); int* slots = (int*)readBits(r < 0 ? 0 : r);
    k_kstar_adagrad::AdagradConsts kc; memcpy(&kc, k, sizeof k);
    k_kstar_adagrad::kstar_adagrad(p, g, acc, rows, slots, r, d, r < 0 ? n : r * d, kc, inside);
    put(p, n); put(acc, nAcc);
  }
}
`;

const cxx = host.hostCxx;

describe.skipIf(!cxx)(
  '8-bit and Adagrad CUDA sources, built for the host, equal the cpu kernels bit for bit',
  () => {
    let dir = '';
    const run = (args: (number | string)[], ...arrays: (Float32Array | Int32Array)[]): number[][] =>
      host.runHost(dir, [String(args[0])], [...args.slice(1), ...arrays.flatMap(host.bitsOf)].join(' '));

    beforeAll(() => {
      dir = host.buildHost(
        'kstar-optim-host-',
        { 'main.cpp': `${SHIMS}${host.namespacedUnit(kstarOptimSources())}${MAIN}` },
        cxx!,
        ['-O1', '-ffp-contract=off'],
      );
    }, 60_000);
    afterAll(() => host.removeHostBuild(dir));

    it('quantize (absmax, codes) and dequantize, signed with the sign fix and unsigned, odd block sizes', () => {
      const n = 1001;
      const x = host.floats(n, 7, -3, 3);
      x.fill(0, 100, 200); // a zero block (B = 100)
      x[205] = Number.POSITIVE_INFINITY; // an Inf block
      x[333] = Number.NaN; // a NaN block
      for (let i = 400; i < 500; i++) x[i] = x[i]! * 1e-7; // tiny values next to a large one
      x[450] = 2;
      // Block [500, 600) has absmax 1: exact midpoints between neighbouring codes (ties go down) and their neighbours.
      const qs = dynamicMap(true);
      const below = (v: number) => v - 2 ** (Math.floor(Math.log2(Math.abs(v))) - 24);
      x[500] = 1;
      for (let j = 1; j < 100; j++) {
        const mid = Math.fround((qs[2 * j + 20]! + qs[2 * j + 21]!) * 0.5);
        x[500 + j] = j % 3 === 0 ? mid : Math.fround(j % 3 === 1 ? below(mid) : 2 * mid - below(mid));
      }
      for (const [B, signed, fix] of [
        [100, 1, 1],
        [100, 1, 0],
        [64, 0, 0],
      ] as const) {
        const xs = signed ? x : x.map(Math.abs);
        const codes = new Int32Array(Math.ceil(n / 4));
        const absmax = new Float32Array(Math.ceil(n / B));
        quantizeArray(xs, signed === 1, B, codes, absmax, fix === 1);
        const out = new Float32Array(n);
        dequantizeArray(codes, absmax, signed === 1, B, out);
        const [am, c, d] = run(['quant', n, B, signed, fix], xs);
        expect(am, `absmax B=${B}`).toEqual(host.bitsOf(absmax));
        expect(c, `codes B=${B} signed=${signed} fix=${fix}`).toEqual(host.bitsOf(codes));
        expect(d, `dequantized B=${B}`).toEqual(host.bitsOf(out));
      }
    });

    it('pack and unpack, 8 and 16 bits, values taken modulo 2^bits', () => {
      const n = 1003;
      const v = Int32Array.from(host.floats(n, 3, -70000, 70000), Math.trunc);
      for (const bits of [8, 16] as const) {
        const [packed, back] = run(['pack', n, bits], v);
        expect(packed).toEqual(host.bitsOf(packArray(v, bits)));
        expect(back).toEqual(host.bitsOf(unpackArray(packArray(v, bits), n, bits)));
      }
    });

    it('the fused 8-bit Adam step (blocks straddling words, a NaN and an Inf gradient)', () => {
      const n = 1001;
      const B = 130;
      const nb = Math.ceil(n / B);
      const p = host.floats(n, 11, -1, 1);
      const g = host.floats(n, 12, -0.1, 0.1);
      g[17] = Number.NaN;
      g[600] = Number.NEGATIVE_INFINITY;
      const [c1, a1, c2, a2] = [
        new Int32Array(Math.ceil(n / 4)),
        new Float32Array(nb),
        new Int32Array(Math.ceil(n / 4)),
        new Float32Array(nb),
      ];
      quantizeArray(host.floats(n, 13, -0.05, 0.05), true, B, c1, a1, true);
      quantizeArray(host.floats(n, 14, 0, 1e-3), false, B, c2, a2);
      const hp = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 5 };
      const k = [
        hp.beta1,
        1 - hp.beta1,
        hp.beta2,
        1 - hp.beta2,
        1 - hp.lr * hp.weightDecay,
        hp.lr / (1 - hp.beta1 ** hp.step),
        Math.sqrt(1 - hp.beta2 ** hp.step),
        hp.eps,
      ] as const;
      const got = run(['adam8bit', n, B, ...k], p, g, c1, a1, c2, a2);
      // Reference: @kstar/optim-adam8bit's documented step (float64 math, float32 states, decay before the step).
      const [b1, omb1, b2, omb2, decay, stepSize, sqrtBc2, eps] = k;
      const qs = dynamicMap(true);
      const qu = dynamicMap(false);
      const f = Math.fround;
      const code = (w: Int32Array, i: number) => (w[i >> 2]! >>> (8 * (i & 3))) & 0xff;
      const ms = new Float32Array(n);
      const vs = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const blk = Math.floor(i / B);
        if (!Number.isFinite(g[i]!)) continue;
        ms[i] = f(b1 * dequantizeValue(qs, code(c1, i), a1[blk]!) + omb1 * g[i]!);
        vs[i] = f(b2 * dequantizeValue(qu, code(c2, i), a2[blk]!) + omb2 * g[i]! * g[i]!);
        p[i] = p[i]! * decay - stepSize * (ms[i]! / (Math.sqrt(vs[i]!) / sqrtBc2 + eps));
      }
      c1.fill(0);
      c2.fill(0);
      for (let blk = 0; blk < nb; blk++) {
        const [s, e] = [blk * B, Math.min(n, blk * B + B)];
        a1[blk] = blockAbsmax(ms, s, e);
        a2[blk] = blockAbsmax(vs, s, e);
        for (let i = s; i < e; i++) {
          c1[i >> 2]! |= quantizeValue(qs, ms[i]!, a1[blk]!, 127, true) << (8 * (i & 3));
          c2[i >> 2]! |= quantizeValue(qu, vs[i]!, a2[blk]!, 0, false) << (8 * (i & 3));
        }
      }
      expect(got).toEqual([p, c1, a1, c2, a2].map(host.bitsOf));
    });

    it('Adagrad, dense and row-lazy, eps outside and inside the square root', () => {
      const d = 7;
      const V = 13;
      const n = V * d;
      const rows = Int32Array.from([4, 0, 11, 7]);
      const slots = Int32Array.from([2, 0, 3, 1]);
      for (const [lazy, inside] of [
        [false, 0],
        [true, 1],
      ] as const) {
        const p = host.floats(n, 21, -1, 1);
        const g = host.floats(n, 22, -2, 2);
        const acc = host.floats(lazy ? rows.length * d : n, 23, 0, 0.5);
        const [lr, eps] = [0.05, 1e-10];
        const got = lazy
          ? run(['adagrad', n, rows.length, d, acc.length, lr, eps, inside], p, g, acc, rows, slots)
          : run(['adagrad', n, -1, d, acc.length, lr, eps, inside], p, g, acc);
        // Reference: @kstar/optim-lazy-adagrad's cpu loop (float64 math, float32 storage).
        const pairs = lazy ? Array.from(rows, (r, k) => [r * d, slots[k]! * d, d]) : [[0, 0, n]];
        for (const [po, ao, len] of pairs as [number, number, number][]) {
          for (let j = 0; j < len; j++) {
            const gi = g[po + j]!;
            acc[ao + j] = acc[ao + j]! + gi * gi;
            const a = acc[ao + j]!;
            p[po + j] = p[po + j]! - (lr * gi) / (inside ? Math.sqrt(a + eps) : Math.sqrt(a) + eps);
          }
        }
        expect(got).toEqual([p, acc].map(host.bitsOf));
      }
    });
  },
);

// The cuda kernels read their constants from the attributes by name: the names must be @kstar/kernels' (an 8-bit Adam
// reading `omb1` after the plugins' constants became `oneMinusBeta1` got NaN on the H200).
it('reads the Adam constants under the names @kstar/kernels gives them', () => {
  const names = Object.keys(
    adamStepConstants({ lr: 1, beta1: 0.9, beta2: 0.99, eps: 1, weightDecay: 0, step: 1 }),
  );
  expect([...ADAM8_CONSTS].sort()).toEqual([...names].sort());
  expect([...ADAMW_CONSTS].sort()).toEqual([...names].sort());
});
