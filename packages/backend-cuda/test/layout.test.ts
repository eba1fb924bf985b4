import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  alignedLds,
  PAD_MIN_MACS,
  transposedFirstOperandPays,
  transposedOutputPays,
  transposedProductPays,
} from '../src/gemm-align.ts';
import { vectorCopy } from '../src/launch.ts';
import { gemmPlan, isRowBias } from '../src/matmul.ts';
import {
  contiguousStrides,
  elementwiseLayout,
  reductionPermutation,
  sizeOf,
  transposeStrides,
} from '../src/shape.ts';

// The index arithmetic the CUDA kernels run, replayed in JavaScript and checked against tfjs's cpu backend.

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** What ew_* does for element i: mode 0 reads i, 1 reads 0, 2 walks the collapsed strides. */
function elementwiseOffsets(outShape: number[], inShapes: number[][]): number[][] {
  const l = elementwiseLayout(outShape, inShapes);
  const n = sizeOf(outShape);
  return inShapes.map((_, k) =>
    [...Array(n).keys()].map((i) => {
      if (l.modes[k] === 0) return i;
      if (l.modes[k] === 1) return 0;
      let r = i;
      let o = 0;
      for (let d = l.shape.length - 1; d >= 0; d--) {
        const c = r % l.shape[d]!;
        r = Math.floor(r / l.shape[d]!);
        o += c * l.strides[k]![d]!;
      }
      return o;
    }),
  );
}

const rand = (shape: number[]) => tf.randomUniform(shape, -1, 1, 'float32', 7);

describe('element-wise broadcasting layout', () => {
  const cases: [number[], number[]][] = [
    [
      [3, 5],
      [3, 5],
    ],
    [[3, 5], [5]],
    [
      [3, 5],
      [3, 1],
    ],
    [[1], [4, 7]],
    [
      [2, 1, 7],
      [5, 1],
    ],
    [
      [2, 3, 2, 2, 3, 2, 3],
      [1, 2, 1, 3, 1, 3],
    ],
    [[1, 9], [9]],
  ];
  it.each(cases)('[%j] + [%j] reads what tf.add reads', (sa, sb) => {
    const a = rand(sa);
    const b = rand(sb);
    const expected = tf.add(a, b);
    const outShape = expected.shape;
    const [oa, ob] = elementwiseOffsets(outShape, [sa, sb]);
    const av = a.dataSync();
    const bv = b.dataSync();
    const got = oa!.map((o, i) => Math.fround(av[o]! + bv[ob![i]!]!));
    expect(got).toEqual(Array.from(expected.dataSync()));
    tf.dispose([a, b, expected]);
  });

  it('merges dimensions so a rank-7 broadcast fits the kernels', () => {
    const l = elementwiseLayout(
      [2, 3, 4, 5, 6, 7, 8],
      [
        [2, 3, 4, 5, 6, 7, 8],
        [1, 1, 1, 1, 1, 7, 8],
      ],
    );
    expect(l.shape).toEqual([720, 56]);
    expect(l.modes).toEqual([0, 2]);
  });
});

describe('transpose and reduction layouts', () => {
  it('transposeStrides reads what tf.transpose writes', () => {
    const x = rand([2, 3, 4]);
    const perm = [2, 0, 1];
    const { shape, strides } = transposeStrides(x.shape, perm);
    const xv = x.dataSync();
    const got = [...Array(sizeOf(shape)).keys()].map((i) => {
      let r = i;
      let o = 0;
      for (let d = shape.length - 1; d >= 0; d--) {
        o += (r % shape[d]!) * strides[d]!;
        r = Math.floor(r / shape[d]!);
      }
      return xv[o];
    });
    const t = tf.transpose(x, perm);
    expect(got).toEqual(Array.from(t.dataSync()));
    tf.dispose([x, t]);
  });

  it('reductionPermutation moves reduced axes innermost', () => {
    expect(reductionPermutation(3, [2])).toBeNull();
    expect(reductionPermutation(3, [1, 2])).toBeNull();
    expect(reductionPermutation(3, [0])).toEqual([1, 2, 0]);
    expect(reductionPermutation(4, [2, 0])).toEqual([1, 3, 0, 2]);
    expect(contiguousStrides([2, 3, 4])).toEqual([12, 4, 1]);
  });
});

/** cuBLAS's column-major strided-batched GEMM, replayed: C = op(X)·op(Y), X = first operand. */
function colMajorGemm(
  plan: ReturnType<typeof gemmPlan>,
  first: Float32Array,
  second: Float32Array,
): number[] {
  const { m, n, k, opFirst, opSecond, ldFirst, ldSecond, ldc } = plan;
  const c = new Array<number>(m * n).fill(0);
  const at = (buf: Float32Array, op: number, ld: number, r: number, col: number) =>
    op === 0 ? buf[r + col * ld]! : buf[col + r * ld]!;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++)
        s += at(first, opFirst, ldFirst, i, p) * at(second, opSecond, ldSecond, p, j);
      c[i + j * ldc] = s;
    }
  return c;
}

describe('cuBLAS GEMM plan (column-major, operands swapped)', () => {
  it.each([
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ])('transposeA=%s transposeB=%s matches tf.matMul', (ta, tb) => {
    const a = rand(ta ? [5, 3] : [3, 5]);
    const b = rand(tb ? [4, 5] : [5, 4]);
    const plan = gemmPlan(a.shape, b.shape, ta, tb);
    const got = colMajorGemm(plan, b.dataSync() as Float32Array, a.dataSync() as Float32Array);
    const expected = tf.matMul(a, b, ta, tb);
    expect(plan.M).toBe(3);
    expect(plan.N).toBe(4);
    const want = expected.dataSync();
    for (const [i, v] of got.entries()) expect(v).toBeCloseTo(want[i]!, 5);
    tf.dispose([a, b, expected]);
  });
});

describe('strided copy in 16-byte units', () => {
  /** The scalar strided copy's input offset of each output element (what strided_copy_* computes). */
  const offsets = (shape: number[], strides: number[], offset: number, unit: number) =>
    [...Array(sizeOf(shape)).keys()].map((i) => {
      let r = i;
      let o = offset;
      for (let d = shape.length - 1; d >= 0; d--) {
        o += (r % shape[d]!) * strides[d]!;
        r = Math.floor(r / shape[d]!);
      }
      return o * unit;
    });

  it('a head transpose [B, T, H, dh] → [B, H, T, dh] reads the same elements 4 at a time', () => {
    const shape = [2, 3, 5, 8]; // [B, T, H, dh]
    const perm = [0, 2, 1, 3];
    const s = contiguousStrides(shape);
    const outShape = perm.map((p) => shape[p]!);
    const outStrides = perm.map((p) => s[p]!);
    const v = vectorCopy(outShape, outStrides, [], 4)!;
    expect(v).not.toBeNull();
    const scalar = offsets(outShape, outStrides, 4, 1);
    const vec = offsets(v.shape, v.strides, 1, 4);
    expect(scalar).toEqual(scalar.map((_, i) => vec[Math.floor(i / 4)]! + (i % 4)));
  });

  it('refuses layouts 16-byte units cannot serve', () => {
    expect(vectorCopy([4, 6], [6, 1], [], 0)).toBeNull(); // row length 6
    expect(vectorCopy([4, 8], [1, 4], [], 0)).toBeNull(); // innermost not contiguous
    expect(vectorCopy([4, 8], [10, 1], [], 0)).toBeNull(); // row stride 10
    expect(vectorCopy([4, 8], [8, 1], [], 2)).toBeNull(); // offset 2
    expect(vectorCopy([4, 8], [8, 1], [0, 4], 0)).toBeNull(); // tile (mods)
  });
});

describe('GEMM leading dimensions padded for tensor cores', () => {
  it('pads only misaligned operand rows, always for bf16, for float32 only above the size threshold', () => {
    const lds = { first: 768, second: 50257, out: 50257 };
    expect(alignedLds('strict', lds, PAD_MIN_MACS * 10)).toEqual(lds);
    expect(alignedLds('tf32', lds, PAD_MIN_MACS - 1)).toEqual(lds);
    expect(alignedLds('tf32', lds, PAD_MIN_MACS)).toEqual({ first: 768, second: 50260, out: 50257 });
    expect(alignedLds('bf16', lds, 1)).toEqual({ first: 768, second: 50264, out: 50257 });
    expect(alignedLds('bf16', lds, PAD_MIN_MACS)).toEqual({ first: 768, second: 50264, out: 50257 });
  });

  it('computes only large unbatched products with misaligned output rows and aligned M transposed', () => {
    const head = { M: 8192, N: 50257, K: 768, batch: 1 }; // the LM head's logits
    expect(transposedOutputPays('tf32', head, false)).toBe(true);
    expect(transposedOutputPays('bf16', head, false)).toBe(true);
    expect(transposedOutputPays('strict', head, false)).toBe(false); // no tensor cores: alignment is moot
    expect(transposedOutputPays('tf32', head, true)).toBe(false); // a GEMM bias is per output column
    expect(transposedOutputPays('tf32', { ...head, batch: 2 }, false)).toBe(false);
    expect(transposedOutputPays('tf32', { ...head, M: 8190 }, false)).toBe(false); // Cᵀ's rows misaligned too
    expect(transposedOutputPays('tf32', { ...head, N: 50260 }, false)).toBe(false); // aligned for TF32…
    expect(transposedOutputPays('bf16', { ...head, N: 50260 }, false)).toBe(true); // …not for bf16 (8 elements)
    const small = Math.floor(PAD_MIN_MACS / (8192 * 768)) - 1;
    expect(transposedOutputPays('tf32', { ...head, N: small }, false)).toBe(false);
  });

  it('copies Aᵀ first only for large TF32 weight-gradient products (Aᵀ·B) at least 512 wide', () => {
    const dW = { M: 768, N: 3072, K: 8192, batch: 1 }; // dW_fc = xᵀ·dy
    expect(transposedFirstOperandPays('tf32', dW, true, false)).toBe(true);
    expect(transposedFirstOperandPays('tf32', { M: 50257, N: 768, K: 8192, batch: 1 }, true, false)).toBe(
      true,
    ); // dWte
    expect(transposedFirstOperandPays('bf16', dW, true, false)).toBe(false); // bf16 reads Aᵀ at full speed
    expect(transposedFirstOperandPays('strict', dW, true, false)).toBe(false);
    for (const [ta, tb] of [
      [false, false],
      [false, true],
      [true, true],
    ] as const)
      expect(transposedFirstOperandPays('tf32', dW, ta, tb)).toBe(false);
    expect(transposedFirstOperandPays('tf32', { M: 1024, N: 64, K: 1024, batch: 96 }, true, false)).toBe(
      false,
    ); // dv
    expect(transposedFirstOperandPays('tf32', { ...dW, K: 8190 }, true, false)).toBe(false); // the copy's rows misaligned
    expect(transposedFirstOperandPays('tf32', { ...dW, K: 64 }, true, false)).toBe(false); // < PAD_MIN_MACS
  });

  it('computes a weight gradient transposed where copying Bᵀ and Cᵀ moves fewer elements than copying Aᵀ', () => {
    expect(transposedProductPays('tf32', { M: 3072, N: 768, K: 8192 })).toBe(true); // dW_proj = hᵀ·dy
    expect(transposedProductPays('tf32', { M: 768, N: 3072, K: 8192 })).toBe(false); // dW_fc: Aᵀ is the smaller copy
    expect(transposedProductPays('tf32', { M: 50257, N: 768, K: 8192 })).toBe(false); // dWte: Cᵀ rows misaligned
  });

  it.each([
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ])(
    'a product through padded operands and output equals tf.matMul (transposeA=%s transposeB=%s)',
    (ta, tb) => {
      // A [M, K] = [3, 5], B [K, N] = [5, 7]: every leading dimension odd.
      const a = rand(ta ? [5, 3] : [3, 5]);
      const b = rand(tb ? [7, 5] : [5, 7]);
      const plan = gemmPlan(a.shape, b.shape, ta, tb);
      const ld = alignedLds(
        'tf32',
        { first: plan.ldFirst, second: plan.ldSecond, out: plan.ldc },
        PAD_MIN_MACS,
      );
      /** pitched_copy: rows of `cols` elements into rows of `ldOut`. */
      const pitched = (x: Float32Array, rows: number, cols: number, ldOut: number, ldIn: number) => {
        const out = new Float32Array(rows * ldOut).fill(Number.NaN); // padding must never be read
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * ldOut + c] = x[r * ldIn + c]!;
        return out;
      };
      const first = pitched(b.dataSync() as Float32Array, b.shape[0]!, b.shape[1]!, ld.first, b.shape[1]!);
      const second = pitched(a.dataSync() as Float32Array, a.shape[0]!, a.shape[1]!, ld.second, a.shape[1]!);
      const c = new Float32Array(
        colMajorGemm({ ...plan, ldFirst: ld.first, ldSecond: ld.second, ldc: ld.out }, first, second),
      );
      const got = pitched(c, plan.M, plan.N, plan.N, ld.out);
      const expected = tf.matMul(a, b, ta, tb);
      const want = expected.dataSync();
      for (const [i, v] of got.entries()) expect(v).toBeCloseTo(want[i]!, 5);
      tf.dispose([a, b, expected]);
    },
  );
});

it('a bias of one value per output column is added by the GEMM; other shapes by a broadcasting Add', () => {
  expect(isRowBias([768], 768)).toBe(true);
  expect(isRowBias([1, 1, 768], 768)).toBe(true);
  expect(isRowBias([1], 768)).toBe(false); // a scalar: broadcast by Add
  expect(isRowBias([8, 768], 768)).toBe(false); // per-row values
  expect(isRowBias([768, 1], 768)).toBe(false);
  expect(isRowBias([], 768)).toBe(false);
});
