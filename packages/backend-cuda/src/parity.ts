import * as tf from '@tensorflow/tfjs-core';
import { kstarParityCases } from './kstar-parity.ts';
import { type CudaMatmulPrecision, matmulPrecision, setMatmulPrecision } from './matmul.ts';

/**
 * Kernel parity: every kernel of the `cuda` backend against tfjs's `cpu` backend on the same random inputs, with odd
 * sizes and broadcast shapes. Each case builds its inputs from seeded values, runs an op (or a gradient) on both
 * backends and compares element by element: |cuda − cpu| ≤ atol + rtol·|cpu| (float32: rtol 1e-4, atol 1e-5 ×
 * the case's scale; integers and booleans exactly).
 */

type Input = { shape: number[]; dtype?: 'float32' | 'int32' | 'bool'; lo?: number; hi?: number };

export interface ParityCase {
  /** The tfjs kernel this case exercises (by name, as registered). */
  kernel: string;
  name: string;
  inputs: Input[];
  run: (xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
  /** Multiplies the absolute tolerance (sums over many terms). */
  scale?: number;
}

/** Appends one case to `cases`; `scale` (when given) multiplies the absolute tolerance. */
export const caseAdder =
  (cases: ParityCase[]) =>
  (
    kernel: string,
    name: string,
    inputs: ParityCase['inputs'],
    run: ParityCase['run'],
    scale?: number,
  ): void => {
    cases.push(scale === undefined ? { kernel, name, inputs, run } : { kernel, name, inputs, run, scale });
  };

export interface ParityResult {
  kernel: string;
  name: string;
  pass: boolean;
  maxAbsError: number;
  maxRelError: number;
  elements: number;
  error?: string;
}

const f = (...shape: number[]): Input => ({ shape });
const i = (lo: number, hi: number, ...shape: number[]): Input => ({ shape, dtype: 'int32', lo, hi });
const pos = (...shape: number[]): Input => ({ shape, lo: 0.1, hi: 2 });
const b = (...shape: number[]): Input => ({ shape, dtype: 'bool' });

const unaryOps: [string, (x: tf.Tensor) => tf.Tensor, Input?][] = [
  ['Neg', tf.neg],
  ['Abs', tf.abs],
  ['Square', tf.square],
  ['Sign', tf.sign],
  ['Exp', tf.exp],
  ['Expm1', tf.expm1],
  ['Log', tf.log, pos(7, 13)],
  ['Log1p', tf.log1p, pos(7, 13)],
  ['Sqrt', tf.sqrt, pos(7, 13)],
  ['Rsqrt', tf.rsqrt, pos(7, 13)],
  ['Reciprocal', tf.reciprocal, pos(7, 13)],
  ['Tanh', tf.tanh],
  ['Sigmoid', tf.sigmoid],
  ['Softplus', tf.softplus],
  ['Erf', tf.erf],
  ['Sin', tf.sin],
  ['Cos', tf.cos],
  ['Floor', tf.floor],
  ['Ceil', tf.ceil],
  ['Round', tf.round],
  ['Relu', tf.relu],
  ['Relu6', (x) => tf.relu6(tf.mul(x, 8))],
  ['Elu', tf.elu],
  ['Selu', tf.selu],
  ['LeakyRelu', (x) => tf.leakyRelu(x, 0.13)],
  ['Step', (x) => tf.step(x, 0.3)],
  ['ClipByValue', (x) => tf.clipByValue(x, -0.4, 0.55)],
  ['IsNan', (x) => tf.isNaN(tf.div(x, tf.round(x)))],
  ['IsInf', (x) => tf.isInf(tf.div(x, tf.round(x)))],
  ['IsFinite', (x) => tf.isFinite(tf.div(x, tf.round(x)))],
];

const binaryOps: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, Input?, Input?][] = [
  ['Add', tf.add],
  ['Sub', tf.sub],
  ['Multiply', tf.mul],
  ['RealDiv', tf.div, undefined, pos(1)],
  ['FloorDiv', tf.floorDiv, undefined, pos(1)],
  ['Mod', tf.mod, undefined, pos(1)],
  ['Maximum', tf.maximum],
  ['Minimum', tf.minimum],
  ['Pow', tf.pow, pos(1), undefined],
  ['SquaredDifference', tf.squaredDifference],
  ['Atan2', tf.atan2],
  ['Prelu', tf.prelu],
  ['Equal', (a, c) => tf.equal(tf.round(a), tf.round(c))],
  ['NotEqual', (a, c) => tf.notEqual(tf.round(a), tf.round(c))],
  ['Less', tf.less],
  ['LessEqual', tf.lessEqual],
  ['Greater', tf.greater],
  ['GreaterEqual', tf.greaterEqual],
];

/** Broadcast pairs: same shape, row, column, scalar, rank-3 with a missing leading dimension. */
const BROADCASTS: [number[], number[]][] = [
  [
    [37, 53],
    [37, 53],
  ],
  [[5, 37, 53], [53]],
  [
    [37, 1],
    [1, 53],
  ],
  [
    [3, 7, 11],
    [7, 1],
  ],
  [[], [13, 9]],
];

export function parityCases(): ParityCase[] {
  const cases: ParityCase[] = [];
  const add = caseAdder(cases);
  for (const [kernel, op, input] of unaryOps) {
    const shape = input?.shape.length ? input.shape : [7, 13];
    add(
      kernel,
      `${kernel} [${shape}]`,
      [{ ...(input ?? f()), shape, lo: input?.lo ?? -3, hi: input?.hi ?? 3 }],
      ([x]) => op(x!),
    );
  }
  for (const [kernel, op, ia, ib] of binaryOps) {
    for (const [sa, sb] of kernel === 'Prelu' ? [BROADCASTS[1]!] : BROADCASTS) {
      const a: Input = { ...(ia ?? f()), shape: sa };
      const c: Input = { ...(ib ?? f()), shape: sb };
      cases.push({ kernel, name: `${kernel} [${sa}]·[${sb}]`, inputs: [a, c], run: ([x, y]) => op(x!, y!) });
    }
  }
  for (const [kernel, op] of [
    ['Add', tf.add],
    ['Multiply', tf.mul],
    ['Maximum', tf.maximum],
    ['FloorDiv', tf.floorDiv],
    ['Mod', tf.mod],
  ] as const)
    add(kernel, `${kernel} int32`, [i(-20, 20, 9, 11), i(1, 7, 11)], ([x, y]) => op(x!, y!));
  for (const [kernel, op] of [
    ['LogicalAnd', tf.logicalAnd],
    ['LogicalOr', tf.logicalOr],
  ] as const)
    add(kernel, `${kernel} [9,11]·[11]`, [b(9, 11), b(11)], ([x, y]) => op(x!, y!));
  add('LogicalNot', 'LogicalNot', [b(9, 11)], ([x]) => tf.logicalNot(x!));
  add('Select', 'Select broadcast', [b(9, 11), f(9, 11), f(9, 11)], ([c, x, y]) => tf.where(c!, x!, y!));
  add('Select', 'Select [9,1] condition', [b(9, 1), f(9, 11), f(9, 11)], ([c, x, y]) => tf.where(c!, x!, y!));
  add('AddN', 'AddN of 4', [f(7, 9), f(7, 9), f(7, 9), f(7, 9)], (xs) => tf.addN(xs));
  add('Cast', 'Cast float→int32', [{ shape: [7, 9], lo: -9, hi: 9 }], ([x]) => tf.cast(x!, 'int32'));
  add('Cast', 'Cast int32→float', [i(-50, 50, 7, 9)], ([x]) => tf.cast(x!, 'float32'));
  add('Cast', 'Cast float→bool', [i(-1, 2, 7, 9)], ([x]) => tf.cast(tf.cast(x!, 'float32'), 'bool'));
  add('Cast', 'Cast bool→float', [b(7, 9)], ([x]) => tf.cast(x!, 'float32'));
  // Reductions over every kind of axis set.
  for (const [kernel, op] of [
    ['Sum', tf.sum],
    ['Mean', tf.mean],
    ['Max', tf.max],
    ['Min', tf.min],
    [
      'Prod',
      (x: tf.Tensor, ax?: number | number[], k?: boolean) => tf.prod(tf.add(tf.mul(x, 0.1), 1), ax, k),
    ],
  ] as const) {
    for (const axis of [-1, 0, 1, [0, 2], undefined] as (number | number[] | undefined)[]) {
      add(
        kernel,
        `${kernel} [6,37,301] axis ${JSON.stringify(axis ?? 'all')}`,
        [f(6, 37, 301)],
        ([x]) => op(x!, axis, axis === 1),
        100,
      );
    }
  }
  cases.push({ kernel: 'Sum', name: 'Sum int32', inputs: [i(-9, 9, 33, 17)], run: ([x]) => tf.sum(x!, 0) });
  // Leading axes over many rows: the column reduction's two passes (a bias gradient's shape).
  add('Sum', 'Sum [1031,77] axis 0', [f(1031, 77)], ([x]) => tf.sum(x!, 0), 100);
  add('Mean', 'Mean [300,3,5] axes [0,1] keepDims', [f(300, 3, 5)], ([x]) => tf.mean(x!, [0, 1], true), 10);
  cases.push({ kernel: 'Max', name: 'Max [517,9] axis 0', inputs: [f(517, 9)], run: ([x]) => tf.max(x!, 0) });
  add('Sum', 'Sum int32 [600,7] axis 0', [i(-9, 9, 600, 7)], ([x]) => tf.sum(x!, 0));
  cases.push({ kernel: 'All', name: 'All', inputs: [b(9, 3)], run: ([x]) => tf.all(x!, 1) });
  cases.push({ kernel: 'Any', name: 'Any', inputs: [b(9, 3)], run: ([x]) => tf.any(x!, 0) });
  add('ArgMax', 'ArgMax axis 1', [f(13, 517)], ([x]) => tf.argMax(x!, 1));
  add('ArgMax', 'ArgMax axis 0', [f(13, 517)], ([x]) => tf.argMax(x!, 0));
  cases.push({ kernel: 'ArgMin', name: 'ArgMin', inputs: [f(13, 517)], run: ([x]) => tf.argMin(x!, 1) });
  add('Softmax', 'Softmax [3,5,1031]', [{ shape: [3, 5, 1031], lo: -20, hi: 20 }], ([x]) => tf.softmax(x!));
  add('Softmax', 'Softmax grad', [f(6, 77), f(6, 77)], ([x, dy]) =>
    tf.grad((t: tf.Tensor) => tf.softmax(t))(x!, dy!),
  );
  // Data movement.
  add('Transpose', 'Transpose [5,7,9,11] perm 0213', [f(5, 7, 9, 11)], ([x]) =>
    tf.transpose(x!, [0, 2, 1, 3]),
  );
  add('Transpose', 'Transpose [37,53]', [f(37, 53)], ([x]) => tf.transpose(x!));
  add('Transpose', 'Transpose [2,3,4,5,6] perm 41302', [f(2, 3, 4, 5, 6)], ([x]) =>
    tf.transpose(x!, [4, 1, 3, 0, 2]),
  );
  add('Reshape', 'Reshape', [f(6, 35)], ([x]) => tf.reshape(x!, [5, -1, 7]));
  add('ExpandDims', 'ExpandDims', [f(6, 35)], ([x]) => tf.expandDims(x!, 1));
  add('Squeeze', 'Squeeze', [f(6, 1, 35)], ([x]) => tf.squeeze(x!, [1]));
  add('Identity', 'Identity (clone)', [f(6, 35)], ([x]) => tf.clone(x!));
  add('Slice', 'Slice inner', [f(9, 17, 23)], ([x]) => tf.slice(x!, [1, 3, 5], [7, 11, 13]));
  add('Slice', 'Slice rows (contiguous)', [f(9, 17, 23)], ([x]) => tf.slice(x!, [2, 0, 0], [5, 17, 23]));
  add('StridedSlice', 'StridedSlice step 2, negative', [f(9, 17, 23)], ([x]) =>
    tf.stridedSlice(x!, [1, 16, 0], [8, 0, 23], [2, -3, 5]),
  );
  add('StridedSlice', 'StridedSlice shrink', [f(9, 17)], ([x]) =>
    tf.stridedSlice(x!, [3, 0], [4, 17], [1, 1], 0, 0, 0, 0, 1),
  );
  add('Reverse', 'Reverse axes 0,2', [f(5, 7, 9)], ([x]) => tf.reverse(x!, [0, 2]));
  add('Tile', 'Tile [3,5]×[2,3]', [f(3, 5)], ([x]) => tf.tile(x!, [2, 3]));
  add('BroadcastTo', 'BroadcastTo', [f(7, 1)], ([x]) => tf.broadcastTo(x!, [3, 7, 11]));
  cases.push({
    kernel: 'PadV2',
    name: 'PadV2',
    inputs: [f(5, 7, 9)],
    run: ([x]) =>
      tf.pad(
        x!,
        [
          [1, 2],
          [0, 3],
          [4, 0],
        ],
        0.5,
      ),
  });
  add('Concat', 'Concat axis 1', [f(5, 7), f(5, 3), f(5, 11)], (xs) => tf.concat(xs, 1));
  add('Concat', 'Concat axis 0', [f(5, 7), f(2, 7)], (xs) => tf.concat(xs, 0));
  add('Concat', 'Concat int32 axis -1', [i(0, 9, 3, 4, 5), i(0, 9, 3, 4, 2)], (xs) => tf.concat(xs, -1));
  add('Pack', 'Pack axis 1', [f(5, 7), f(5, 7), f(5, 7)], (xs) => tf.stack(xs, 1));
  add('Unpack', 'Unpack axis 1', [f(5, 3, 7)], ([x]) => tf.unstack(x!, 1));
  add('SplitV', 'SplitV [2,5,4] axis -1', [f(3, 11, 11)], ([x]) => tf.split(x!, [2, 5, 4], -1));
  add('SplitV', 'SplitV 3 axis 0', [f(9, 5)], ([x]) => tf.split(x!, 3, 0));
  add('GatherV2', 'GatherV2 rows (embedding)', [f(101, 33), i(0, 101, 4, 9)], ([x, idx]) =>
    tf.gather(x!, idx!),
  );
  add('GatherV2', 'GatherV2 axis 1', [f(5, 31, 7), i(0, 31, 13)], ([x, idx]) => tf.gather(x!, idx!, 1));
  add(
    'UnsortedSegmentSum',
    'UnsortedSegmentSum',
    [f(257, 33), i(0, 41, 257)],
    ([x, ids]) => tf.unsortedSegmentSum(x!, ids as tf.Tensor1D, 41),
    10,
  );
  add(
    'UnsortedSegmentSum',
    'Gather grad (embedding backward)',
    [f(101, 33), i(0, 101, 4, 9), f(4, 9, 33)],
    ([x, idx, dy]) => tf.grad((t: tf.Tensor) => tf.gather(t, idx!))(x!, dy!),
    10,
  );
  add('OneHot', 'OneHot depth 97', [i(-1, 98, 5, 7)], ([x]) => tf.oneHot(x!, 97, 0.9, 0.001));
  add('TensorScatterUpdate', 'TensorScatterUpdate rows', [f(11, 7), f(3, 7)], ([t, u]) =>
    tf.tensorScatterUpdate(t!, tf.tensor2d([[1], [4], [9]], [3, 1], 'int32'), u!),
  );
  cases.push({ kernel: 'Fill', name: 'Fill', inputs: [], run: () => tf.fill([7, 9], 2.5) });
  cases.push({ kernel: 'ZerosLike', name: 'ZerosLike', inputs: [f(7, 9)], run: ([x]) => tf.zerosLike(x!) });
  add('OnesLike', 'OnesLike', [i(0, 3, 7, 9)], ([x]) => tf.onesLike(x!));
  cases.push({ kernel: 'Range', name: 'Range', inputs: [], run: () => tf.range(3, 40, 1.5) });
  // Matrix products through cuBLAS, every transpose, batched and broadcast batches.
  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const) {
    add(
      'BatchMatMul',
      `BatchMatMul [3,37,129]·[3,129,51] ta=${ta} tb=${tb}`,
      [f(3, ...(ta ? [129, 37] : [37, 129])), f(3, ...(tb ? [51, 129] : [129, 51]))],
      ([a, c]) => tf.matMul(a!, c!, ta, tb),
      30,
    );
  }
  // The LM head's shape class on tensor cores: output rows of N = 1366 (not 16-byte aligned) take the transposed-output
  // path (gemm-align.ts transposedOutputPays). Inputs are multiples of 1/8 in [−1, 1], exact in bf16 and TF32, and
  // every sum is exact in float32: the result must equal cpu's (a layout error would not).
  const eighths = (x: tf.Tensor) => tf.div(tf.round(tf.mul(x, 8)), 8);
  const exactProduct = (precision: CudaMatmulPrecision, ta: boolean, tb: boolean) => (xs: tf.Tensor[]) => {
    const before = matmulPrecision();
    setMatmulPrecision(precision);
    try {
      return tf.matMul(eighths(xs[0]!), eighths(xs[1]!), ta, tb);
    } finally {
      setMatmulPrecision(before);
    }
  };
  for (const precision of ['tf32', 'bf16'] as const)
    add(
      'BatchMatMul',
      `BatchMatMul ${precision} [1024,768]·[1366,768]ᵀ (transposed output)`,
      [f(1024, 768), f(1366, 768)],
      exactProduct(precision, false, true),
    );
  // A weight gradient's shape class in TF32 (Aᵀ·B, N ≥ 512): A is copied transposed first (gemm-align.ts
  // transposedFirstOperandPays), here batched (the copy's grid z); and the wide-A class (dW_proj): Cᵀ = Bᵀ·A with Bᵀ
  // copied, then transposed (transposedProductPays).
  add(
    'BatchMatMul',
    'BatchMatMul tf32 [2,1024,768]ᵀ·[2,1024,700] (Aᵀ copied first)',
    [f(2, 1024, 768), f(2, 1024, 700)],
    exactProduct('tf32', true, false),
  );
  add(
    'BatchMatMul',
    'BatchMatMul tf32 [4096,768]ᵀ·[4096,512] (Cᵀ = Bᵀ·A, transposed)',
    [f(4096, 768), f(4096, 512)],
    exactProduct('tf32', true, false),
  );
  add(
    'BatchMatMul',
    'BatchMatMul broadcast batch [1,..]·[4,..]',
    [f(1, 9, 17), f(4, 17, 5)],
    ([a, c]) => tf.matMul(a!, c!),
    10,
  );
  add(
    'BatchMatMul',
    'BatchMatMul 2-D · weight',
    [f(77, 768), f(768, 129)],
    ([a, c]) => tf.matMul(a!, c!),
    100,
  );
  add(
    'BatchMatMul',
    'BatchMatMul grad',
    [f(2, 9, 17), f(2, 17, 5), f(2, 9, 5)],
    ([a, c, dy]) => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y))([a!, c!], dy!),
    10,
  );
  for (const activation of ['linear', 'relu', 'elu', 'relu6', 'leakyrelu', 'sigmoid'] as const) {
    add(
      '_FusedMatMul',
      `_FusedMatMul bias ${activation}`,
      [f(13, 65), f(65, 31), f(31)],
      ([a, c, bias]) => tf.fused.matMul({ a: a!, b: c!, bias: bias!, activation, leakyreluAlpha: 0.2 }),
      10,
    );
  }
  add(
    '_FusedMatMul',
    '_FusedMatMul batched, bias [1, N] (added by the GEMM, β = 1)',
    [f(3, 9, 17), f(3, 17, 5), f(1, 5)],
    ([a, c, bias]) => tf.fused.matMul({ a: a!, b: c!, bias: bias! }),
    10,
  );
  cases.push({
    kernel: '_FusedMatMul',
    name: '_FusedMatMul transposeB prelu',
    inputs: [f(13, 65), f(31, 65), f(31), f(31)],
    run: ([a, c, bias, al]) =>
      tf.fused.matMul({
        a: a!,
        b: c!,
        transposeB: true,
        bias: bias!,
        activation: 'prelu',
        preluActivationWeights: al!,
      }),
    scale: 10,
  });
  cases.push({
    kernel: '_FusedMatMul',
    name: '_FusedMatMul grad',
    inputs: [f(13, 65), f(65, 31), f(31), f(13, 31)],
    run: ([a, c, bias, dy]) =>
      tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
        tf.fused.matMul({ a: x, b: y, bias: z, activation: 'relu' }),
      )([a!, c!, bias!], dy!),
    scale: 10,
  });
  // K*'s GELU kernels: native on cuda; on cpu the reference below (tfjs ops, the formula of @kstar/kernels' gelu.ts).
  const geluRef = (h: tf.Tensor) => {
    const t = tf.tanh(tf.mul(tf.mul(h, tf.add(tf.mul(tf.square(h), 0.044715), 1)), Math.sqrt(2 / Math.PI)));
    return { t, y: tf.mul(tf.mul(h, tf.add(t, 1)), 0.5) };
  };
  cases.push({
    kernel: 'KstarGelu',
    name: 'KstarGelu [67,3072]',
    inputs: [{ shape: [67, 3072], lo: -6, hi: 6 }],
    run: ([h]) =>
      tf.getBackend() === 'cuda'
        ? (tf.engine().runKernel('KstarGelu', { h: h! }) as tf.Tensor)
        : geluRef(h!).y,
  });
  cases.push({
    kernel: 'KstarGeluGrad',
    name: 'KstarGeluGrad [67,3072]',
    inputs: [{ shape: [67, 3072], lo: -6, hi: 6 }, f(67, 3072)],
    run: ([h, dy]) => {
      if (tf.getBackend() === 'cuda')
        return tf.engine().runKernel('KstarGeluGrad', { h: h!, dy: dy! }) as tf.Tensor;
      const { t } = geluRef(h!);
      const c = Math.sqrt(2 / Math.PI);
      const left = tf.mul(tf.add(t, 1), 0.5);
      const right = tf.mul(
        tf.mul(tf.mul(tf.sub(1, tf.square(t)), tf.add(tf.mul(tf.square(h!), 3 * 0.044715), 1)), h!),
        0.5 * c,
      );
      return tf.mul(dy!, tf.add(left, right));
    },
  });
  // The GPT's own composite: layer norm and cross-entropy gradients through tfjs ops.
  cases.push({
    kernel: 'Mean',
    name: 'layer norm forward+backward (ops)',
    inputs: [f(4, 9, 96), f(4, 9, 96)],
    run: ([x, dy]) =>
      tf.grad((t: tf.Tensor) => {
        const mean = tf.mean(t, -1, true);
        const c = tf.sub(t, mean);
        return tf.mul(c, tf.rsqrt(tf.add(tf.mean(tf.square(c), -1, true), 1e-5)));
      })(x!, dy!),
    scale: 10,
  });
  cases.push(...kstarParityCases());
  return cases;
}

/** Deterministic uniform values (a 32-bit LCG), so both backends see the same inputs. */
function values(input: Input, seed: number): Float32Array | Int32Array | Uint8Array {
  const n = input.shape.reduce((a, c) => a * c, 1);
  let s = (seed * 2654435761) >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const lo = input.lo ?? -1;
  const hi = input.hi ?? 1;
  if (input.dtype === 'bool') return Uint8Array.from({ length: n }, () => (next() < 0.5 ? 1 : 0));
  if (input.dtype === 'int32')
    return Int32Array.from({ length: n }, () => Math.floor(lo + next() * (hi - lo)));
  return Float32Array.from({ length: n }, () => lo + next() * (hi - lo));
}

async function runOn(
  backend: string,
  c: ParityCase,
  data: (Float32Array | Int32Array | Uint8Array)[],
): Promise<tf.TypedArray[]> {
  await tf.setBackend(backend);
  const xs = c.inputs.map((inp, k) => tf.tensor(data[k]!, inp.shape, inp.dtype ?? 'float32'));
  try {
    const out = tf.tidy(() => c.run(xs));
    const outs = Array.isArray(out) ? out : [out];
    const vals = await Promise.all(outs.map((t) => t.data()));
    tf.dispose(outs);
    return vals as tf.TypedArray[];
  } finally {
    tf.dispose(xs);
  }
}

/** Runs every case on `cpu` and `cuda` (both must be registered) and compares. */
export async function runParity(
  cases: ParityCase[] = parityCases(),
  log: (line: string) => void = () => {},
): Promise<ParityResult[]> {
  const results: ParityResult[] = [];
  for (const [k, c] of cases.entries()) {
    const data = c.inputs.map((inp, j) => values(inp, 1000 * k + j + 1));
    const r: ParityResult = {
      kernel: c.kernel,
      name: c.name,
      pass: false,
      maxAbsError: 0,
      maxRelError: 0,
      elements: 0,
    };
    try {
      const want = await runOn('cpu', c, data);
      const got = await runOn('cuda', c, data);
      if (want.length !== got.length) throw new Error(`${got.length} outputs on cuda, ${want.length} on cpu`);
      let ok = true;
      const atol = 1e-5 * (c.scale ?? 1);
      for (const [o, w] of want.entries()) {
        const g = got[o]!;
        if (g.length !== w.length)
          throw new Error(`output ${o}: ${g.length} elements on cuda, ${w.length} on cpu`);
        r.elements += w.length;
        for (let e = 0; e < w.length; e++) {
          const wv = Number(w[e]);
          const gv = Number(g[e]);
          if (Number.isNaN(wv) || Number.isNaN(gv)) {
            if (Number.isNaN(wv) !== Number.isNaN(gv)) ok = false;
            continue;
          }
          if (!Number.isFinite(wv) || !Number.isFinite(gv)) {
            if (wv !== gv) ok = false;
            continue;
          }
          const abs = Math.abs(gv - wv);
          r.maxAbsError = Math.max(r.maxAbsError, abs);
          if (Math.abs(wv) > 1e-3) r.maxRelError = Math.max(r.maxRelError, abs / Math.abs(wv));
          const exact = !(w instanceof Float32Array);
          if (exact ? abs !== 0 : abs > atol + 1e-4 * Math.abs(wv)) ok = false;
        }
      }
      r.pass = ok;
    } catch (e) {
      r.error = (e as Error).message.split('\n')[0];
    }
    results.push(r);
    log(
      `${r.pass ? 'PASS' : 'FAIL'} ${c.name}${r.error ? `: ${r.error}` : ` (max abs error ${r.maxAbsError.toExponential(2)})`}`,
    );
  }
  return results;
}
