import * as tf from '@tensorflow/tfjs-core';
import { parityRelErr, parityValues } from './fused-parity.ts';
import {
  planWebGPUMatMul,
  registerWebGPUMatMul,
  unregisterWebGPUMatMul,
  webgpuMatMulCounts,
  webgpuMatMulUsesF16,
} from './webgpu-matmul.ts';
import type { MatMulActivation } from './webgpu-matmul-program.ts';

/**
 * Parity of K*'s WebGPU matmul on the active backend: each case against a float64 JS reference (at up to `samples`
 * output entries, so gpt2-sized products stay cheap) and against tfjs-backend-webgpu's own kernel (every entry,
 * compared on the GPU). Used by the CI test on lavapipe and by `pnpm bench matmul` on a real GPU.
 */
export interface MatMulCase {
  name: string;
  /** Stored shapes of A and B (transposes are the flags below, not the shapes). */
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
  bias?: 'column' | 'scalar';
  activation?: MatMulActivation;
}

export interface MatMulParityRow {
  name: string;
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
  bias: string;
  activation: string;
  /** Which kernel computed the product: K*'s, or tfjs's (the case fell outside what K*'s handles). */
  kernel: 'kstar' | 'tfjs';
  /** The kernel the plan should pick (`planWebGPUMatMul`): a case routed to tfjs is only checked for that. */
  expected: 'kstar' | 'tfjs';
  /** max |K* − float64| / max |float64| over the sampled entries. */
  relErrVsFloat64: number;
  /** max |K* − tfjs| / max |tfjs| over every entry. */
  relErrVsTfjs: number;
  /** Output entries checked against float64. */
  sampled: number;
  /** strict (float32) or f16-mixed (f16 operands, f32 accumulation): sets the tolerance. */
  precision: 'strict' | 'f16-mixed';
  pass: boolean;
}

/** float32 sums over up to 8,192 terms (dW at gpt2 shapes), against float64. */
export const MATMUL_TOLERANCE = 2e-5;

/**
 * f16-mixed: each operand rounded to f16 (≤ 2^-11 relative, so ≤ 2^-10 of |a|·|b| a term) with f32 sums: 1.6e-3 of
 * max |C| for a 16×16×16 product on the H200 (scripts/webgpu-f16-probe.mjs). A wrong layout or a missed K slice is
 * off by O(1).
 */
export const MATMUL_F16_TOLERANCE = 5e-3;

/** Odd sizes (no tile divides them), every transpose combination, batches (broadcast either way), bias, activations. */
export const MATMUL_PARITY_CASES: MatMulCase[] = (() => {
  const cases: MatMulCase[] = [];
  for (const tA of [false, true])
    for (const tB of [false, true]) {
      const m = 37;
      const k = 53;
      const n = 29;
      const shapeA = (batch: number[]) => [...batch, ...(tA ? [k, m] : [m, k])];
      const shapeB = (batch: number[]) => [...batch, ...(tB ? [n, k] : [k, n])];
      const tag = `${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}`;
      cases.push({ name: `2d ${tag}`, a: shapeA([]), b: shapeB([]), transposeA: tA, transposeB: tB });
      cases.push({ name: `batched ${tag}`, a: shapeA([3]), b: shapeB([3]), transposeA: tA, transposeB: tB });
      cases.push({
        name: `rank4 ${tag}`,
        a: shapeA([2, 3]),
        b: shapeB([2, 3]),
        transposeA: tA,
        transposeB: tB,
      });
      cases.push({
        name: `A broadcast ${tag}`,
        a: shapeA([]),
        b: shapeB([4]),
        transposeA: tA,
        transposeB: tB,
      });
      cases.push({
        name: `B broadcast ${tag}`,
        a: shapeA([4]),
        b: shapeB([1]),
        transposeA: tA,
        transposeB: tB,
      });
      cases.push({
        name: `bias+relu ${tag}`,
        a: shapeA([]),
        b: shapeB([]),
        transposeA: tA,
        transposeB: tB,
        bias: 'column',
        activation: 'relu',
      });
    }
  // Larger than one 128×128 tile in both directions, with partial tiles and a K not a multiple of 16.
  cases.push({ name: 'multi-tile NT', a: [300, 70], b: [259, 70], transposeA: false, transposeB: true });
  cases.push({ name: 'multi-tile TN', a: [70, 300], b: [70, 259], transposeA: true, transposeB: false });
  // Few output tiles, long K: split-K (partial products, then a reduce applying bias and activation).
  cases.push({ name: 'split-K TN', a: [1100, 250], b: [1100, 254], transposeA: true, transposeB: false });
  cases.push({
    name: 'split-K NT bias+sigmoid',
    a: [250, 1100],
    b: [254, 1100],
    transposeA: false,
    transposeB: true,
    bias: 'column',
    activation: 'sigmoid',
  });
  // Every tile aligned: the unchecked fast path.
  cases.push({ name: 'aligned NN', a: [256, 64], b: [64, 256], transposeA: false, transposeB: false });
  for (const activation of ['linear', 'relu6', 'elu', 'sigmoid', 'leakyrelu'] as const)
    cases.push({
      name: `bias+${activation}`,
      a: [2, 19, 33],
      b: [33, 45],
      transposeA: false,
      transposeB: false,
      bias: 'column',
      activation,
    });
  cases.push({
    name: 'scalar bias',
    a: [19, 33],
    b: [33, 45],
    transposeA: false,
    transposeB: false,
    bias: 'scalar',
  });
  return cases;
})();

/** gpt2-124m's products at T = 1024, batch 8 (the table): N = 8192 rows, D = 768, V = 50,257, 96 heads. */
export const GPT2_MATMUL_CASES: MatMulCase[] = [
  { name: 'x·W_qkv', a: [8192, 768], b: [768, 2304], transposeA: false, transposeB: false },
  { name: 'x·W_fc', a: [8192, 768], b: [768, 3072], transposeA: false, transposeB: false },
  { name: 'h·W_proj', a: [8192, 3072], b: [3072, 768], transposeA: false, transposeB: false },
  { name: 'dW_fc = xᵀ·dy', a: [8192, 768], b: [8192, 3072], transposeA: true, transposeB: false },
  { name: 'dx = dy·W_fcᵀ', a: [8192, 3072], b: [768, 3072], transposeA: false, transposeB: true },
  { name: 'LM head h·Wteᵀ', a: [8192, 768], b: [50257, 768], transposeA: false, transposeB: true },
  { name: 'scores q·kᵀ', a: [96, 1024, 64], b: [96, 1024, 64], transposeA: false, transposeB: true },
  { name: 'probs·v', a: [96, 1024, 1024], b: [96, 1024, 64], transposeA: false, transposeB: false },
];

/** m, k, n, batch of a case (after its transposes). */
export function caseDims(c: MatMulCase): { m: number; k: number; n: number; batch: number } {
  const ra = c.a.length;
  const rb = c.b.length;
  const m = c.transposeA ? c.a[ra - 1]! : c.a[ra - 2]!;
  const k = c.transposeA ? c.a[ra - 2]! : c.a[ra - 1]!;
  const n = c.transposeB ? c.b[rb - 2]! : c.b[rb - 1]!;
  const batchA = tf.util.sizeFromShape(c.a.slice(0, -2));
  const batchB = tf.util.sizeFromShape(c.b.slice(0, -2));
  return { m, k, n, batch: Math.max(batchA, batchB) };
}

/** The fields that name a case in result rows. */
export function caseFields(
  c: MatMulCase,
): Pick<MatMulCase, 'name' | 'a' | 'b' | 'transposeA' | 'transposeB'> {
  return { name: c.name, a: c.a, b: c.b, transposeA: c.transposeA, transposeB: c.transposeB };
}

/** Floating-point operations of one product (2·m·n·k per batch). */
export function caseFlops(c: MatMulCase): number {
  const { m, k, n, batch } = caseDims(c);
  return 2 * batch * m * n * k;
}

function activate(v: number, activation: MatMulActivation): number {
  switch (activation) {
    case 'linear':
      return v;
    case 'relu':
      return Math.max(v, 0);
    case 'relu6':
      return Math.min(Math.max(v, 0), 6);
    case 'elu':
      return v < 0 ? Math.exp(v) - 1 : v;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'leakyrelu':
      return v >= 0 ? v : 0.2 * v; // tfjs's default alpha
  }
}

/** The case's inputs (deterministic values) and the product through `tf.fused.matMul` / `tf.matMul`. */
export function caseInputs(c: MatMulCase): { a: tf.Tensor; b: tf.Tensor; bias: tf.Tensor | undefined } {
  const { n } = caseDims(c);
  const a = tf.tensor(parityValues(tf.util.sizeFromShape(c.a), 11, -1, 1), c.a);
  const b = tf.tensor(parityValues(tf.util.sizeFromShape(c.b), 12, -1, 1), c.b);
  const bias =
    c.bias === 'column'
      ? tf.tensor1d(parityValues(n, 13))
      : c.bias === 'scalar'
        ? tf.scalar(0.75)
        : undefined;
  return { a, b, bias };
}

export function caseProduct(c: MatMulCase, inputs: ReturnType<typeof caseInputs>): tf.Tensor {
  if (!c.bias && !c.activation) return tf.matMul(inputs.a, inputs.b, c.transposeA, c.transposeB);
  return tf.fused.matMul({
    a: inputs.a,
    b: inputs.b,
    transposeA: c.transposeA,
    transposeB: c.transposeB,
    ...(inputs.bias ? { bias: inputs.bias } : {}),
    activation: c.activation ?? 'linear',
  });
}

/** float64 value of output entry (batch, i, j) from the float32 inputs. */
function entry64(
  c: MatMulCase,
  av: Float32Array,
  bv: Float32Array,
  biasv: Float32Array | null,
  bt: number,
  i: number,
  j: number,
): number {
  const { m, k, n } = caseDims(c);
  const aOff = tf.util.sizeFromShape(c.a.slice(0, -2)) === 1 ? 0 : bt * m * k;
  const bOff = tf.util.sizeFromShape(c.b.slice(0, -2)) === 1 ? 0 : bt * k * n;
  let s = 0;
  for (let p = 0; p < k; p++) {
    const x = c.transposeA ? av[aOff + p * m + i]! : av[aOff + i * k + p]!;
    const y = c.transposeB ? bv[bOff + j * k + p]! : bv[bOff + p * n + j]!;
    s += x * y;
  }
  if (biasv) s += biasv.length === 1 ? biasv[0]! : biasv[j]!;
  return activate(s, c.activation ?? 'linear');
}

/** max |x − ref| / max |ref| over the whole output, reduced on the device (two scalars read back). */
async function deviceRelErr(x: tf.Tensor, ref: tf.Tensor): Promise<number> {
  const [diff, scale] = tf.tidy(() => [tf.max(tf.abs(tf.sub(x, ref))), tf.max(tf.abs(ref))]);
  const d = (await diff!.data())[0]!;
  const s = (await scale!.data())[0]!;
  diff!.dispose();
  scale!.dispose();
  // An all-zero reference means a failed submit read back as zeros (no case has all-zero inputs): not a pass.
  return Number.isNaN(d) || s === 0 ? Number.POSITIVE_INFINITY : d / s;
}

/** One case: K*'s product against float64 (`samples` entries spread over the output) and tfjs's kernel. */
export async function matMulParityCase(c: MatMulCase, samples = 4096): Promise<MatMulParityRow> {
  const { m, n, batch } = caseDims(c);
  const inputs = caseInputs(c);
  const before = webgpuMatMulCounts().kstar;
  const ours = caseProduct(c, inputs);
  const kernel = webgpuMatMulCounts().kstar > before ? 'kstar' : 'tfjs';
  const f16 = webgpuMatMulUsesF16(tf.backend());
  const expected = planWebGPUMatMul(inputs.a, inputs.b, inputs.bias, c, { f16 }) ? 'kstar' : 'tfjs';
  const tolerance = f16 ? MATMUL_F16_TOLERANCE : MATMUL_TOLERANCE;
  unregisterWebGPUMatMul();
  let theirs: tf.Tensor;
  try {
    theirs = caseProduct(c, inputs);
  } finally {
    registerWebGPUMatMul();
  }
  const relErrVsTfjs = await deviceRelErr(ours, theirs);
  theirs.dispose();
  // Sampled entries: up to 64 whole rows of the [batch·m, n] output (gathered by row: tfjs's webgpu gather reads its
  // indices as f32, exact only below 2^24, so flat indices into a larger output would pick wrong entries), and in
  // each row up to samples/64 columns at a fixed stride (rows, columns and batches all vary).
  const rowsTotal = batch * m;
  const rowCount = Math.min(rowsTotal, 64);
  const rowPicks = Array.from(
    { length: rowCount },
    (_, r) => Math.floor((r * rowsTotal) / rowCount + (r % 3)) % rowsTotal,
  );
  const colCount = Math.min(n, Math.max(1, Math.floor(samples / rowCount)));
  const index = tf.tensor1d(rowPicks, 'int32');
  const rows2d = tf.reshape(ours, [rowsTotal, n]);
  const gathered = tf.gather(rows2d, index); // [rowCount, n]
  const rowValues = (await gathered.data()) as Float32Array;
  const av = (await inputs.a.data()) as Float32Array;
  const bv = (await inputs.b.data()) as Float32Array;
  const biasv = inputs.bias ? ((await inputs.bias.data()) as Float32Array) : null;
  const count = rowCount * colCount;
  const got = new Float32Array(count);
  const exact = new Float64Array(count);
  for (let r = 0; r < rowCount; r++)
    for (let col = 0; col < colCount; col++) {
      const row = rowPicks[r]!;
      const j = Math.floor((col * n) / colCount + ((r + col) % 5)) % n;
      got[r * colCount + col] = rowValues[r * n + j]!;
      exact[r * colCount + col] = entry64(c, av, bv, biasv, Math.floor(row / m), row % m, j);
    }
  const relErrVsFloat64 = parityRelErr(got, exact);
  tf.dispose([ours, rows2d, index, gathered, inputs.a, inputs.b, ...(inputs.bias ? [inputs.bias] : [])]);
  return {
    ...caseFields(c),
    bias: c.bias ?? 'none',
    activation: c.activation ?? 'linear',
    kernel,
    expected,
    relErrVsFloat64,
    relErrVsTfjs,
    sampled: count,
    precision: f16 ? 'f16-mixed' : 'strict',
    pass: kernel === expected && relErrVsFloat64 <= tolerance && relErrVsTfjs <= tolerance,
  };
}

export async function matMulParity(cases: MatMulCase[], samples?: number): Promise<MatMulParityRow[]> {
  const rows: MatMulParityRow[] = [];
  for (const c of cases) rows.push(await matMulParityCase(c, samples));
  return rows;
}

export function formatMatMulParity(rows: MatMulParityRow[]): string {
  return rows
    .map(
      (r) =>
        `${r.pass ? 'PASS' : 'FAIL'} matmul ${r.name.padEnd(18)} ${r.kernel === 'kstar' && r.precision === 'f16-mixed' ? 'f16  ' : r.kernel.padEnd(5)} vs float64 ${r.relErrVsFloat64.toExponential(1)} vs tfjs ${r.relErrVsTfjs.toExponential(1)} (${r.sampled} sampled)`,
    )
    .join('\n');
}
