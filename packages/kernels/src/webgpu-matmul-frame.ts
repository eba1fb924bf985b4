import type { FlatProgram } from './wgsl.ts';

/**
 * What K*'s two WebGPU matmul programs (float32 register tiles, webgpu-matmul-program.ts; f16 subgroup matrices,
 * webgpu-matmul-f16-program.ts) share: the uniforms, the dispatch over output tiles and batch · splits, the tile's
 * origin and K range in WGSL, the staging of an operand's K slice into workgroup memory, and the output write with
 * bias and activation. Each program supplies only its tile layout and its inner loop.
 */

/** The fused activations of tfjs's `_FusedMatMul` the programs compute (prelu goes to tfjs's own kernel). */
export type MatMulActivation = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid' | 'leakyrelu';

/** WGSL of each activation of `v : f32`. */
export const MATMUL_ACTIVATIONS: Record<MatMulActivation, string> = {
  linear: 'v',
  relu: 'select(v, 0.0, v < 0.0)',
  relu6: 'clamp(v, 0.0, 6.0)',
  elu: 'select(v, exp(v) - 1.0, v < 0.0)',
  sigmoid: '1.0 / (1.0 + exp(-v))',
  leakyrelu: 'select(uniforms.alpha * v, v, v >= 0.0)',
};

/** What the frame reads of a spec (the float32 and the f16 programs' specs both have it). */
export interface MatMulShape {
  tile: { tm: number; tn: number; tk: number };
  transposeA: boolean;
  transposeB: boolean;
  m: number;
  n: number;
  k: number;
  batch: number;
  /** Split-K partial products [batch, splits, m, n] (bias and activation then applied by the reduce), or 1. */
  splits: number;
  bias: 'none' | 'column' | 'scalar';
  activation: MatMulActivation;
}

/** Which of M, N and K are whole multiples of the tile (those need no bounds checks). */
export function matMulAlignment(s: MatMulShape): { m: boolean; n: boolean; k: boolean } {
  return { m: s.m % s.tile.tm === 0, n: s.n % s.tile.tn === 0, k: s.k % s.tile.tk === 0 };
}

/** Cache key of a generated shader: the program's name and tile label, then everything else the WGSL depends on. */
export function matMulKey(s: MatMulShape, name: string, tileLabel: string, extra: string[] = []): string {
  const al = matMulAlignment(s);
  return [
    name,
    tileLabel,
    s.transposeA ? 'tA' : 'nA',
    s.transposeB ? 'tB' : 'nB',
    `al${+al.m}${+al.n}${+al.k}`,
    s.splits > 1 ? 'splitk' : 'whole',
    s.bias,
    s.activation,
    ...extra,
  ].join('_');
}

/** K per split: a multiple of the tile's K slice (so only the last split can end inside a slice). */
export function splitKChunk(s: Pick<MatMulShape, 'k' | 'splits'> & { tile: { tk: number } }): number {
  const slices = Math.ceil(s.k / s.tile.tk);
  return Math.ceil(slices / s.splits) * s.tile.tk;
}

/**
 * The program object both matmuls return: one workgroup per `tm × tn` output tile and per batch · split (z), the
 * inputs A, B, (Bias) and then `extraInputs`, and the uniforms `matMulUniforms` fills.
 */
export function matMulFrame(
  s: MatMulShape,
  frame: {
    key: string;
    workgroupSize: [number, number, number];
    extraInputs?: string[];
    /** Components of each input binding (4: `array<vec4<f32>>`), in the order of the inputs; all 1 if absent. */
    components?: number[];
    userCode: () => string;
  },
): FlatProgram & { variableComponents?: number[] } {
  const inputs = [...(s.bias === 'none' ? ['A', 'B'] : ['A', 'B', 'Bias']), ...(frame.extraInputs ?? [])];
  return {
    variableNames: inputs,
    outputShape: [s.batch * s.splits * s.m * s.n],
    shaderKey: frame.key,
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(s.n / s.tile.tn), Math.ceil(s.m / s.tile.tm), s.batch * s.splits],
    workgroupSize: frame.workgroupSize,
    size: false,
    uniforms: `M : i32, N : i32, K : i32, aBatchStride : i32, bBatchStride : i32, splits : i32, kChunk : i32, kSteps : i32,${s.activation === 'leakyrelu' ? ' alpha : f32,' : ''}`,
    ...(frame.components ? { variableComponents: frame.components } : {}),
    getUserCode: frame.userCode,
  };
}

/** The program's own uniforms, in the order `matMulFrame` declares them. */
export function matMulUniforms(
  s: Pick<MatMulShape, 'm' | 'n' | 'k' | 'splits' | 'activation'> & { tile: { tk: number } },
  batchA: number,
  batchB: number,
  alpha: number,
): Array<{ type: 'float32' | 'int32'; data: number[] }> {
  const u: Array<{ type: 'float32' | 'int32'; data: number[] }> = [
    { type: 'int32', data: [s.m] },
    { type: 'int32', data: [s.n] },
    { type: 'int32', data: [s.k] },
    { type: 'int32', data: [batchA === 1 ? 0 : s.m * s.k] },
    { type: 'int32', data: [batchB === 1 ? 0 : s.k * s.n] },
    { type: 'int32', data: [s.splits] },
    { type: 'int32', data: [splitKChunk(s)] },
    { type: 'int32', data: [splitKChunk(s) / s.tile.tk] },
  ];
  if (s.activation === 'leakyrelu') u.push({ type: 'float32', data: [alpha] });
  return u;
}

/** WGSL declarations before `main`: the activation function. */
export function matMulActivationFn(s: MatMulShape): string {
  return `fn act(v : f32) -> f32 { return ${MATMUL_ACTIVATIONS[s.activation]}; }`;
}

/**
 * WGSL statements opening `main`: the tile's origin (m0, n0), its batch and K range (kBegin, kEnd; a split's), and
 * the base offsets of A, B and the output.
 */
export function matMulTileOrigin(s: MatMulShape): string {
  return `let n0 = i32(workgroupId.x) * ${s.tile.tn};
        let m0 = i32(workgroupId.y) * ${s.tile.tm};
        let z = i32(workgroupId.z); // batch · splits + split
        let batch = z / uniforms.splits;
        let kBegin = (z - batch * uniforms.splits) * uniforms.kChunk;
        let kEnd = min(uniforms.K, kBegin + uniforms.kChunk);
        let aBase = batch * uniforms.aBatchStride;
        let bBase = batch * uniforms.bBatchStride;
        let cBase = z * uniforms.M * uniforms.N;`;
}

/** The WGSL statement writing `value` at output (row, col): bias, activation, and bounds checks where unaligned. */
export function matMulWrite(s: MatMulShape, value: string): string {
  const al = matMulAlignment(s);
  const bias = s.bias === 'column' ? 'Bias[col]' : s.bias === 'scalar' ? 'Bias[0]' : '0.0';
  const guard = [...(al.m ? [] : ['row < uniforms.M']), ...(al.n ? [] : ['col < uniforms.N'])];
  const write = `result[cBase + row * uniforms.N + col] = act(${value} + ${bias});`;
  return guard.length ? `if (${guard.join(' && ')}) { ${write} }` : write;
}

/** How one operand's K slice is read from global memory (A: rows = tm, B: rows = tn of the tile). */
export interface OperandStaging {
  name: 'A' | 'B';
  /** Rows of the tile this operand covers (tm for A, tn for B). */
  rows: number;
  tk: number;
  threads: number;
  /** Stored [rows, K] (A untransposed, B transposed), else [K, rows]. */
  kContiguous: boolean;
  checkRows: boolean;
  checkK: boolean;
  /** Elements per read: 4 when the binding is `array<vec4<f32>>` (the contiguous axis a multiple of 4), else 1. */
  width: 1 | 4;
  /** The WGSL of the operand's row count (uniforms.M or uniforms.N). */
  rowsUniform: string;
  /** The WGSL of the tile's first row (m0 or n0). */
  rowOrigin: string;
}

/** The register holding read `i` of an operand (`av0`, `bv3`, …): f32, or vec4<f32> for width 4. */
export function operandRegister(o: OperandStaging, i: number): string {
  return `${o.name.toLowerCase()}v${i}`;
}

/** Declarations of the operand's registers (`var av0 : vec4<f32>;` …), one per read of `operandReads`. */
export function operandRegisters(o: OperandStaging): string {
  const type = o.width === 4 ? 'vec4<f32>' : 'f32';
  return Array.from(
    { length: operandReadCount(o) },
    (_, i) => `var ${operandRegister(o, i)} : ${type};`,
  ).join(' ');
}

/** Reads per thread and K slice: (rows·tk) / (width·threads). */
export function operandReadCount(o: OperandStaging): number {
  return (o.rows * o.tk) / (o.width * o.threads);
}

/** Where read `i` lands in the tile: WGSL of its row `rr` in the tile and its position `kk` in the K slice. */
function readPosition(o: OperandStaging, i: number): { rr: string; kk: string } {
  const perRow = o.kContiguous ? o.tk / o.width : o.rows / o.width; // reads along the contiguous axis
  const e = `(t + ${i * o.threads})`;
  const along = o.width === 4 ? `(${e} % ${perRow}) * 4` : `${e} % ${perRow}`;
  return o.kContiguous ? { kk: along, rr: `${e} / ${perRow}` } : { kk: `${e} / ${perRow}`, rr: along };
}

/**
 * The reads of one operand's K slice starting at `k0` into its registers (zero outside the operand): consecutive
 * threads walk the contiguous axis of the stored operand (coalesced; vec4 reads where `width` is 4).
 */
export function operandReads(o: OperandStaging): string[] {
  const base = `${o.name.toLowerCase()}Base`;
  const zero = o.width === 4 ? 'vec4<f32>(0.0)' : '0.0';
  const lines: string[] = [];
  for (let i = 0; i < operandReadCount(o); i++) {
    const { rr, kk } = readPosition(o, i);
    const v = operandRegister(o, i);
    const conds: string[] = [];
    if (o.checkRows) conds.push(`r < ${o.rowsUniform}`);
    if (o.checkK) conds.push('k < kEnd');
    const flatIndex = o.kContiguous ? `${base} + r * uniforms.K + k` : `${base} + k * ${o.rowsUniform} + r`;
    const index = o.width === 4 ? `(${flatIndex}) / 4` : flatIndex;
    const read = conds.length
      ? `${v} = ${zero}; if (${conds.join(' && ')}) { ${v} = ${o.name}[${index}]; }`
      : `${v} = ${o.name}[${index}];`;
    lines.push(`{ let r = ${o.rowOrigin} + ${rr}; let k = k0 + ${kk}; ${read} }`);
  }
  return lines;
}

/** Statements placing each register in workgroup memory: `place(register, rr, kk)` is the WGSL for one. */
export function operandPlaces(
  o: OperandStaging,
  place: (v: string, rr: string, kk: string) => string,
): string[] {
  const lines: string[] = [];
  for (let i = 0; i < operandReadCount(o); i++) {
    const { rr, kk } = readPosition(o, i);
    lines.push(`{ let rr = ${rr}; let kk = ${kk}; ${place(operandRegister(o, i), 'rr', 'kk')} }`);
  }
  return lines;
}
