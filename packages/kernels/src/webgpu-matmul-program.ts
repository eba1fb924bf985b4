import {
  MATMUL_ACTIVATIONS,
  type MatMulActivation,
  type MatMulShape,
  matMulActivationFn,
  matMulAlignment,
  matMulFrame,
  matMulKey,
  matMulTileOrigin,
  matMulWrite,
  type OperandStaging,
  operandPlaces,
  operandReads,
  operandRegisters,
} from './webgpu-matmul-frame.ts';
import { type FlatProgram, flatProgram } from './wgsl.ts';

export {
  MATMUL_ACTIVATIONS,
  type MatMulActivation,
  type MatMulShape,
  matMulUniforms,
  splitKChunk,
} from './webgpu-matmul-frame.ts';

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

/** Cache key of the generated shader: everything the WGSL text depends on (sizes go in uniforms, except alignment). */
export function matMulShaderKey(s: MatMulProgramSpec): string {
  const t = s.tile;
  return matMulKey(s, 'kstar_mm', `${t.tm}x${t.tn}x${t.tk}_${t.ca}x${t.cb}`);
}

/** Staging of one operand: read into registers, then written k-major with the xor swizzle (see the file comment). */
function stageOperand(o: OperandStaging): string {
  const place = (v: string, rr: string, kk: string) =>
    `${o.name}s[${kk} * ${o.rows / 4} + ((${rr} / 4) ^ (${kk} & 7))][${rr} % 4] = ${v};`;
  const reads = operandReads(o);
  const places = operandPlaces(o, place);
  // Each read stored at once (the order the program had before the shared staging).
  return [operandRegisters(o), ...reads.flatMap((r, i) => [r, places[i]!])].join('\n          ');
}

/** The `WebGPUProgram` for `runWebGPUProgram(program, [flat A, flat B, (flat bias)], 'float32', uniforms)`. */
export function matMulProgram(s: MatMulProgramSpec): FlatProgram {
  const t = s.tile;
  checkTile(t);
  const [wx, wy] = tileThreads(t);
  const threads = wx * wy;
  const al = matMulAlignment(s);
  const { ca, cb, tm, tn, tk } = t;
  const checkK = !al.k || s.splits > 1;
  const staging = (name: 'A' | 'B'): OperandStaging => ({
    name,
    rows: name === 'A' ? tm : tn,
    tk,
    threads,
    kContiguous: name === 'A' ? !s.transposeA : s.transposeB,
    checkRows: name === 'A' ? !al.m : !al.n,
    checkK,
    width: 1,
    rowsUniform: name === 'A' ? 'uniforms.M' : 'uniforms.N',
    rowOrigin: name === 'A' ? 'm0' : 'n0',
  });
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
  for (let c = 0; c < ca; c++)
    for (let i = 0; i < 4; i++) {
      const row = `m0 + ${(c * tm) / ca} + 4 * ty + ${i}`;
      for (let d = 0; d < cb; d++)
        for (let j = 0; j < 4; j++) {
          const col = `n0 + ${(d * tn) / cb} + 4 * tx + ${j}`;
          store.push(`{ let row = ${row}; let col = ${col}; ${matMulWrite(s, `acc_${c}_${i}_${d}[${j}]`)} }`);
        }
    }
  return matMulFrame(s, {
    key: matMulShaderKey(s),
    workgroupSize: [wx, wy, 1],
    userCode: () => `
      var<workgroup> As : array<vec4<f32>, ${(tk * tm) / 4}>; // [tk][tm] of A's slice, k-major
      var<workgroup> Bs : array<vec4<f32>, ${(tk * tn) / 4}>; // [tk][tn] of B's slice, k-major
      ${matMulActivationFn(s)}
      fn main(index : i32) {
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let t = ty * ${wx} + tx;
        ${matMulTileOrigin(s)}
        ${acc.join('\n        ')}
        // A uniform trip count (workgroupBarrier needs uniform control flow); loads stop at kEnd.
        for (var step = 0; step < uniforms.kSteps; step = step + 1) {
          let k0 = kBegin + step * ${tk};
          ${stageOperand(staging('A'))}
          ${stageOperand(staging('B'))}
          workgroupBarrier();
          for (var kk = 0; kk < ${tk}; kk = kk + 1) {
            ${fma.join('\n            ')}
          }
          workgroupBarrier();
        }
        ${store.join('\n        ')}
      }
    `,
  });
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
