import { type FlatProgram, flatProgram } from './wgsl.ts';

/**
 * A register-tiled float32 batched matrix product for WebGPU: C[b] = act(op(A[b])·op(B[b]) + bias), op = identity or
 * transpose. Each workgroup computes a `tm × tn` tile of C; each thread `4·ca × 4·cb` outputs held in registers
 * (`ca`·`cb` vec4 accumulators per row of 4), stepping over K in slices of `tk` staged in workgroup memory.
 *
 * Transposes cost nothing: the loads into workgroup memory read A and B in their stored layout (coalesced along the
 * contiguous axis of each) and write them k-major (`As[k][m]`, `Bs[k][n]`), so the inner loop is the same for all four
 * combinations. The inner loop reads vec4s from workgroup memory: thread (tx, ty) owns rows `c·tm/ca + 4·ty + i` and
 * columns `c·tn/cb + 4·tx + j`, so neighbouring threads read neighbouring vec4s (no bank conflicts) and write
 * neighbouring columns of C. The vec4 slot of row r at step k is `(r/4) xor (k mod 8)`: a load walking k (A
 * untransposed, B transposed) then spreads over 8 banks instead of hitting one 16 times, and the inner loop's reads
 * stay a permutation of neighbouring vec4s (no padding, so a 128×128×16 tile fits WebGPU's default 16 KiB).
 * Everything is unrolled when the shader is generated (registers, not local arrays).
 */
export interface MatMulTile {
  /** Output rows per workgroup. */
  tm: number;
  /** Output columns per workgroup. */
  tn: number;
  /** K slice staged in workgroup memory per step. */
  tk: number;
  /** Rows per thread / 4. */
  ca: number;
  /** Columns per thread / 4. */
  cb: number;
}

/** The fused activations of tfjs's `_FusedMatMul` this program computes (prelu goes to tfjs's own kernel). */
export type MatMulActivation = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid' | 'leakyrelu';

export interface MatMulProgramSpec {
  tile: MatMulTile;
  transposeA: boolean;
  transposeB: boolean;
  /** Output rows, columns, inner size and batch (the dispatch's z). */
  m: number;
  n: number;
  k: number;
  batch: number;
  /**
   * Split-K: each of `splits` workgroup slices sums its own K range into a partial product [batch, splits, m, n]; then
   * `splitKReduceProgram` adds them (and applies bias and activation). 1 = no split (the product written directly).
   */
  splits: number;
  /** Bias: none, one value per output column, or one scalar (must be none when splits > 1: the reduce applies it). */
  bias: 'none' | 'column' | 'scalar';
  activation: MatMulActivation;
}

/** Threads of a workgroup: (tn / 4cb) × (tm / 4ca). */
export function tileThreads(t: MatMulTile): [number, number] {
  return [t.tn / (4 * t.cb), t.tm / (4 * t.ca)];
}

/** Bytes of workgroup memory the tile stages (both operands' K slices). */
export function tileWorkgroupBytes(t: MatMulTile): number {
  return 4 * t.tk * (t.tm + t.tn);
}

/** Throws unless the tile divides into whole threads and loads (a programming error in the tile table). */
export function checkTile(t: MatMulTile): void {
  const [wx, wy] = tileThreads(t);
  const threads = wx * wy;
  const ok =
    Number.isInteger(wx) &&
    Number.isInteger(wy) &&
    wx >= 1 &&
    wy >= 1 &&
    threads <= 256 &&
    (t.tm * t.tk) % threads === 0 &&
    (t.tn * t.tk) % threads === 0 &&
    t.tm % 4 === 0 &&
    t.tn % 4 === 0;
  // The xor swizzle permutes 8 vec4s: each of tm/4, tn/4 must be a multiple of 8.
  const swizzleOk =
    t.tm % 32 === 0 && t.tn % 32 === 0 && (t.tm / t.ca) % 32 === 0 && (t.tn / t.cb) % 32 === 0;
  if (!ok || !swizzleOk)
    throw new Error(
      `matmul tile ${JSON.stringify(t)} is invalid: need tm/(4ca) and tn/(4cb) whole, ≤ 256 threads, tm·tk and tn·tk divisible by the thread count, and tm/ca, tn/cb multiples of 32`,
    );
}

/** WGSL of each activation of `v : f32`. */
export const MATMUL_ACTIVATIONS: Record<MatMulActivation, string> = {
  linear: 'v',
  relu: 'select(v, 0.0, v < 0.0)',
  relu6: 'clamp(v, 0.0, 6.0)',
  elu: 'select(v, exp(v) - 1.0, v < 0.0)',
  sigmoid: '1.0 / (1.0 + exp(-v))',
  leakyrelu: 'select(uniforms.alpha * v, v, v >= 0.0)',
};

/** Cache key of the generated shader: everything the WGSL text depends on (sizes go in uniforms, except alignment). */
export function matMulShaderKey(s: MatMulProgramSpec): string {
  const t = s.tile;
  const aligned = alignment(s);
  return [
    'kstar_mm',
    `${t.tm}x${t.tn}x${t.tk}_${t.ca}x${t.cb}`,
    s.transposeA ? 'tA' : 'nA',
    s.transposeB ? 'tB' : 'nB',
    `al${+aligned.m}${+aligned.n}${+aligned.k}`,
    s.splits > 1 ? 'splitk' : 'whole',
    s.bias,
    s.activation,
  ].join('_');
}

/** What the uniforms and the split-K reduce read of a spec (the float32 and the f16 programs share them). */
export interface MatMulShape {
  tile: { tk: number };
  m: number;
  n: number;
  k: number;
  batch: number;
  splits: number;
  bias: 'none' | 'column' | 'scalar';
  activation: MatMulActivation;
}

/** K per split: a multiple of the tile's K slice (so only the last split can end inside a slice). */
export function splitKChunk(s: MatMulShape): number {
  const slices = Math.ceil(s.k / s.tile.tk);
  return Math.ceil(slices / s.splits) * s.tile.tk;
}

function alignment(s: MatMulProgramSpec): { m: boolean; n: boolean; k: boolean } {
  return { m: s.m % s.tile.tm === 0, n: s.n % s.tile.tn === 0, k: s.k % s.tile.tk === 0 };
}

/**
 * Statements that stage one operand's K slice: `rows` = tm (A) or tn (B) output rows/columns of the tile.
 * `kContiguous`: the operand is stored [rows, K] (A untransposed, B transposed); else [K, rows].
 */
function loadSnippet(
  name: 'A' | 'B',
  rows: number,
  tk: number,
  threads: number,
  kContiguous: boolean,
  checkRows: boolean,
  checkK: boolean,
  rowsUniform: string,
  rowOrigin: string,
): string {
  const shared = `${name}s`;
  const base = `${name.toLowerCase()}Base`;
  const lines: string[] = [];
  for (let i = 0; i < (rows * tk) / threads; i++) {
    const e = `(t + ${i * threads})`;
    // Consecutive threads walk the contiguous axis of the stored operand.
    const kk = kContiguous ? `${e} % ${tk}` : `${e} / ${rows}`;
    const rr = kContiguous ? `${e} / ${tk}` : `${e} % ${rows}`;
    const conds: string[] = [];
    if (checkRows) conds.push(`r${i} < ${rowsUniform}`);
    if (checkK) conds.push(`k${i} < kEnd`);
    const index = kContiguous
      ? `${base} + r${i} * uniforms.K + k${i}`
      : `${base} + k${i} * ${rowsUniform} + r${i}`;
    const read = conds.length
      ? `var v${i} = 0.0; if (${conds.join(' && ')}) { v${i} = ${name}[${index}]; }`
      : `let v${i} = ${name}[${index}];`;
    lines.push(
      `{ let kk = ${kk}; let rr = ${rr}; let r${i} = ${rowOrigin} + rr; let k${i} = k0 + kk; ${read}`,
      `  ${shared}[kk * ${rows / 4} + ((rr / 4) ^ (kk & 7))][rr % 4] = v${i}; }`,
    );
  }
  return lines.join('\n');
}

/** The `WebGPUProgram` for `runWebGPUProgram(program, [flat A, flat B, (flat bias)], 'float32', uniforms)`. */
export function matMulProgram(s: MatMulProgramSpec): FlatProgram {
  const t = s.tile;
  checkTile(t);
  const [wx, wy] = tileThreads(t);
  const threads = wx * wy;
  const al = alignment(s);
  const { ca, cb, tm, tn, tk } = t;
  const acc: string[] = [];
  const fma: string[] = [];
  const store: string[] = [];
  for (let c = 0; c < ca; c++)
    for (let i = 0; i < 4; i++)
      for (let d = 0; d < cb; d++) acc.push(`var acc_${c}_${i}_${d} = vec4<f32>(0.0);`);
  for (let c = 0; c < ca; c++)
    fma.push(`let a${c} = As[kk * ${tm / 4} + ((${(c * tm) / ca / 4} + ty) ^ (kk & 7))];`);
  for (let d = 0; d < cb; d++)
    fma.push(`let b${d} = Bs[kk * ${tn / 4} + ((${(d * tn) / cb / 4} + tx) ^ (kk & 7))];`);
  for (let c = 0; c < ca; c++)
    for (let i = 0; i < 4; i++)
      for (let d = 0; d < cb; d++)
        fma.push(`acc_${c}_${i}_${d} = fma(vec4<f32>(a${c}[${i}]), b${d}, acc_${c}_${i}_${d});`);
  const biasRead = s.bias === 'column' ? 'Bias[col]' : s.bias === 'scalar' ? 'Bias[0]' : '0.0';
  for (let c = 0; c < ca; c++)
    for (let i = 0; i < 4; i++) {
      const row = `m0 + ${(c * tm) / ca} + 4 * ty + ${i}`;
      for (let d = 0; d < cb; d++)
        for (let j = 0; j < 4; j++) {
          const col = `n0 + ${(d * tn) / cb} + 4 * tx + ${j}`;
          const guard = [...(al.m ? [] : ['row < uniforms.M']), ...(al.n ? [] : ['col < uniforms.N'])];
          const write = `result[cBase + row * uniforms.N + col] = act(acc_${c}_${i}_${d}[${j}] + ${biasRead});`;
          store.push(
            `{ let row = ${row}; let col = ${col}; ${guard.length ? `if (${guard.join(' && ')}) { ${write} }` : write} }`,
          );
        }
    }
  const inputs = s.bias === 'none' ? ['A', 'B'] : ['A', 'B', 'Bias'];
  return {
    variableNames: inputs,
    outputShape: [s.batch * s.splits * s.m * s.n],
    shaderKey: matMulShaderKey(s),
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(s.n / tn), Math.ceil(s.m / tm), s.batch * s.splits],
    workgroupSize: [wx, wy, 1],
    size: false,
    uniforms: `M : i32, N : i32, K : i32, aBatchStride : i32, bBatchStride : i32, splits : i32, kChunk : i32, kSteps : i32,${s.activation === 'leakyrelu' ? ' alpha : f32,' : ''}`,
    getUserCode: () => `
      var<workgroup> As : array<vec4<f32>, ${(tk * tm) / 4}>; // [tk][tm] of A's slice, k-major
      var<workgroup> Bs : array<vec4<f32>, ${(tk * tn) / 4}>; // [tk][tn] of B's slice, k-major
      fn act(v : f32) -> f32 { return ${MATMUL_ACTIVATIONS[s.activation]}; }
      fn main(index : i32) {
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let t = ty * ${wx} + tx;
        let n0 = i32(workgroupId.x) * ${tn};
        let m0 = i32(workgroupId.y) * ${tm};
        let z = i32(workgroupId.z); // batch · splits + split
        let batch = z / uniforms.splits;
        let kBegin = (z - batch * uniforms.splits) * uniforms.kChunk;
        let kEnd = min(uniforms.K, kBegin + uniforms.kChunk);
        let aBase = batch * uniforms.aBatchStride;
        let bBase = batch * uniforms.bBatchStride;
        let cBase = z * uniforms.M * uniforms.N;
        ${acc.join('\n        ')}
        // A uniform trip count (workgroupBarrier needs uniform control flow); loads stop at kEnd.
        for (var step = 0; step < uniforms.kSteps; step = step + 1) {
          let k0 = kBegin + step * ${tk};
          ${loadSnippet('A', tm, tk, threads, !s.transposeA, !al.m, !al.k || s.splits > 1, 'uniforms.M', 'm0')}
          ${loadSnippet('B', tn, tk, threads, s.transposeB, !al.n, !al.k || s.splits > 1, 'uniforms.N', 'n0')}
          workgroupBarrier();
          for (var kk = 0; kk < ${tk}; kk = kk + 1) {
            ${fma.join('\n            ')}
          }
          workgroupBarrier();
        }
        ${store.join('\n        ')}
      }
    `,
  };
}

/** The program's own uniforms, in the order of `uniforms` above. */
export function matMulUniforms(
  s: MatMulShape,
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

/**
 * Sums the `splits` partial products [batch, splits, m, n] of a split-K matmul into [batch, m, n], then bias and
 * activation: one thread per output.
 */
export function splitKReduceProgram(s: MatMulShape): FlatProgram {
  const bias =
    s.bias === 'column' ? 'v = v + Bias[rem % uniforms.n];' : s.bias === 'scalar' ? 'v = v + Bias[0];' : '';
  return flatProgram({
    key: `mm_splitk_${s.bias}_${s.activation}`,
    size: s.batch * s.m * s.n,
    inputs: s.bias === 'none' ? ['P'] : ['P', 'Bias'],
    uniforms: 'mn : i32, n : i32, splits : i32, alpha : f32,',
    body: `
      let b = index / uniforms.mn;
      let rem = index - b * uniforms.mn;
      var v = 0.0;
      for (var s = 0; s < uniforms.splits; s = s + 1) { v = v + P[(b * uniforms.splits + s) * uniforms.mn + rem]; }
      ${bias}
      result[index] = ${MATMUL_ACTIVATIONS[s.activation]};`,
  });
}

export function splitKReduceUniforms(
  s: MatMulShape,
  alpha: number,
): Array<{ type: 'float32' | 'int32'; data: number[] }> {
  return [
    { type: 'int32', data: [s.m * s.n] },
    { type: 'int32', data: [s.n] },
    { type: 'int32', data: [s.splits] },
    { type: 'float32', data: [alpha] },
  ];
}
