import { MATMUL_ACTIVATIONS, type MatMulActivation } from './webgpu-matmul-program.ts';
import type { FlatProgram } from './wgsl.ts';

/**
 * The f16-mixed batched matrix product for WebGPU on tensor cores (`--matmul-precision f16-mixed`): C[b] =
 * act(op(A[b])·op(B[b]) + bias) with A, B and C float32 in memory, the operands rounded to f16 when staged in
 * workgroup memory, and every 16×16×16 product accumulated in f32 by `subgroupMatrixMultiplyAccumulate` (Dawn's
 * `chromium-experimental-subgroup-matrix`, Vulkan cooperative matrices underneath).
 *
 * A workgroup computes a `tm × tn` tile of C with `sgm × sgn` subgroups of 32 invocations, each owning a
 * `(tm/sgm) × (tn/sgn)` block of 16×16 result matrices. Transposes cost nothing: each operand's K slice is copied
 * in its stored layout (reads coalesced along its contiguous axis) and `subgroupMatrixLoad` reads it row- or
 * column-major as stored. The results go out through a 16×16 f32 scratch per subgroup, where bias, activation and
 * the bounds of odd sizes are applied.
 *
 * Per-tensor scaling: f16 keeps 11 significant bits over magnitudes 6e-8 (subnormal) to 65,504, and a GPT's
 * gradients sit far below that range (the logits' gradient (softmax − onehot)/N is ~1e-9 at N = 8,192 tokens and a
 * 50,257 vocabulary: zero in f16). Each operand is multiplied by a power of two 2^e bringing its max |x| (computed on
 * the GPU by webgpu-absmax.ts, inputs `SA`, `SB`) to (2^14, 2^15]; the f32 accumulators are multiplied back by
 * 2^-(eA+eB). Powers of two are exact, so the only error is the rounding of each scaled operand to f16's 11 bits
 * (entries below 2^-24 of the tensor's max still vanish). Measured by `kstar bench matmul` (`kstar-f16` rows).
 *
 * The WGSL needs `enable f16; enable chromium_experimental_subgroup_matrix;` before any declaration, but tfjs's
 * shader prelude comes first: the directives sit in the user code and `hoistShaderDirectives` (webgpu-f16-support.ts)
 * moves them to the top when the device compiles the module.
 */
export interface SubgroupMatrixTile {
  /** Output rows and columns per workgroup. */
  tm: number;
  tn: number;
  /** K slice staged in workgroup memory per step (a multiple of 16). */
  tk: number;
  /** Subgroups along the rows and along the columns. */
  sgm: number;
  sgn: number;
}

/** The subgroup matrix shape (M × N × K) the kernel uses: f16 × f16 → f32, offered by NVIDIA's Vulkan driver. */
export const FRAGMENT = 16;
/** Invocations per subgroup the kernel assumes (NVIDIA's warp; the support check requires it). */
export const SUBGROUP_SIZE = 32;

export const F16_TILES = {
  large: { tm: 128, tn: 128, tk: 32, sgm: 2, sgn: 4 },
  small: { tm: 64, tn: 64, tk: 32, sgm: 2, sgn: 2 },
} as const satisfies Record<string, SubgroupMatrixTile>;

export type F16TileName = keyof typeof F16_TILES;

export interface F16MatMulSpec {
  tile: SubgroupMatrixTile;
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

/**
 * Directives the shader needs ahead of tfjs's prelude (hoisted by `hoistShaderDirectives`). Tint requires the
 * offsets of subgroupMatrixLoad/Store to be uniform, and cannot prove `localIndex / 32` is: each subgroup of 32
 * consecutive invocations (NVIDIA's warps; the support check requires 32-wide subgroups) does see one value, so the
 * check is turned off (Tint's `chromium.subgroup_matrix_uniformity`, measured on the H200).
 */
export const F16_DIRECTIVES = [
  'enable f16;',
  'enable chromium_experimental_subgroup_matrix;',
  'diagnostic(off, chromium.subgroup_matrix_uniformity);',
];

export function f16TileThreads(t: SubgroupMatrixTile): number {
  return t.sgm * t.sgn * SUBGROUP_SIZE;
}

/** Bytes of workgroup memory: both f16 K slices and a 16×16 f32 scratch per subgroup. */
export function f16TileWorkgroupBytes(t: SubgroupMatrixTile): number {
  return 2 * t.tk * (t.tm + t.tn) + 4 * t.sgm * t.sgn * FRAGMENT * FRAGMENT;
}

/** Throws unless the tile splits into whole 16×16 fragments per subgroup and whole loads per invocation. */
export function checkF16Tile(t: SubgroupMatrixTile): void {
  const threads = f16TileThreads(t);
  const ok =
    t.tk % FRAGMENT === 0 &&
    t.tm % (t.sgm * FRAGMENT) === 0 &&
    t.tn % (t.sgn * FRAGMENT) === 0 &&
    threads <= 256 &&
    (t.tm * t.tk) % threads === 0 &&
    (t.tn * t.tk) % threads === 0;
  if (!ok)
    throw new Error(
      `f16 matmul tile ${JSON.stringify(t)} is invalid: need tk, tm/sgm and tn/sgn multiples of 16, ≤ 256 invocations (sgm·sgn·32), and tm·tk, tn·tk divisible by them`,
    );
}

export function f16MatMulShaderKey(s: F16MatMulSpec): string {
  const t = s.tile;
  return [
    'kstar_mm_f16',
    `${t.tm}x${t.tn}x${t.tk}_${t.sgm}x${t.sgn}`,
    s.transposeA ? 'tA' : 'nA',
    s.transposeB ? 'tB' : 'nB',
    `al${+(s.m % t.tm === 0)}${+(s.n % t.tn === 0)}${+(s.k % t.tk === 0)}`,
    s.splits > 1 ? 'splitk' : 'whole',
    s.bias,
    s.activation,
  ].join('_');
}

/**
 * Statements copying one operand's K slice into workgroup memory as f16, in its stored layout: `kContiguous`
 * (A untransposed, B transposed: stored [rows, K]) writes `S[r·tk + k]`, else `S[k·rows + r]`.
 */
function stageSnippet(
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
  const base = `${name.toLowerCase()}Base`;
  const lines: string[] = [];
  for (let i = 0; i < (rows * tk) / threads; i++) {
    const e = `(t + ${i * threads})`;
    const kk = kContiguous ? `${e} % ${tk}` : `${e} / ${rows}`;
    const rr = kContiguous ? `${e} / ${tk}` : `${e} % ${rows}`;
    const conds: string[] = [];
    if (checkRows) conds.push(`r < ${rowsUniform}`);
    if (checkK) conds.push(`k < kEnd`);
    const index = kContiguous ? `${base} + r * uniforms.K + k` : `${base} + k * ${rowsUniform} + r`;
    const read = conds.length
      ? `var v = 0.0; if (${conds.join(' && ')}) { v = ${name}[${index}]; }`
      : `let v = ${name}[${index}];`;
    lines.push(
      `{ let e = ${e}; let kk = ${kk}; let rr = ${rr}; let r = ${rowOrigin} + rr; let k = k0 + kk; ${read} ${name}s[e] = f16(v * scale${name}); }`,
    );
  }
  return lines.join('\n');
}

/** The `WebGPUProgram` for `runWebGPUProgram(program, [flat A, flat B, (flat bias)], 'float32', uniforms)`. */
export function f16MatMulProgram(s: F16MatMulSpec): FlatProgram {
  const t = s.tile;
  checkF16Tile(t);
  const threads = f16TileThreads(t);
  const { tm, tn, tk, sgm, sgn } = t;
  const F = FRAGMENT;
  const subRows = tm / sgm;
  const subCols = tn / sgn;
  const fragsM = subRows / F;
  const fragsN = subCols / F;
  const al = { m: s.m % tm === 0, n: s.n % tn === 0, k: s.k % tk === 0 };
  // Left matrices: [tm, tk] k-contiguous (row-major, stride tk) or [tk, tm] m-contiguous (column-major, stride tm).
  const aRowMajor = !s.transposeA;
  // Right matrices: [tk, tn] n-contiguous (row-major, stride tn) or [tn, tk] k-contiguous (column-major, stride tk).
  const bRowMajor = !s.transposeB;
  const left = `subgroup_matrix_left<f16, ${F}, ${F}>`;
  const right = `subgroup_matrix_right<f16, ${F}, ${F}>`;
  const result = `subgroup_matrix_result<f32, ${F}, ${F}>`;
  const acc: string[] = [];
  const mma: string[] = [];
  for (let i = 0; i < fragsM; i++)
    for (let j = 0; j < fragsN; j++) acc.push(`var acc_${i}_${j} : ${result};`);
  for (let kf = 0; kf < tk / F; kf++) {
    const k = kf * F;
    for (let i = 0; i < fragsM; i++) {
      const row = `rowSub + ${i * F}u`;
      const offset = aRowMajor ? `(${row}) * ${tk}u + ${k}u` : `${k * tm}u + ${row}`;
      mma.push(
        `let a_${kf}_${i} = subgroupMatrixLoad<${left}>(&As, ${offset}, ${!aRowMajor}, ${aRowMajor ? tk : tm}u);`,
      );
    }
    for (let j = 0; j < fragsN; j++) {
      const col = `colSub + ${j * F}u`;
      const offset = bRowMajor ? `${k * tn}u + ${col}` : `(${col}) * ${tk}u + ${k}u`;
      mma.push(
        `let b_${kf}_${j} = subgroupMatrixLoad<${right}>(&Bs, ${offset}, ${!bRowMajor}, ${bRowMajor ? tn : tk}u);`,
      );
    }
    for (let i = 0; i < fragsM; i++)
      for (let j = 0; j < fragsN; j++)
        mma.push(
          `acc_${i}_${j} = subgroupMatrixMultiplyAccumulate(a_${kf}_${i}, b_${kf}_${j}, acc_${i}_${j});`,
        );
  }
  const biasRead = s.bias === 'column' ? 'Bias[col]' : s.bias === 'scalar' ? 'Bias[0]' : '0.0';
  const guard = [...(al.m ? [] : ['row < uniforms.M']), ...(al.n ? [] : ['col < uniforms.N'])];
  const store: string[] = [];
  for (let i = 0; i < fragsM; i++)
    for (let j = 0; j < fragsN; j++) {
      store.push(
        `subgroupMatrixStore(&Cs, sg * ${F * F}u, acc_${i}_${j}, false, ${F}u);`,
        'workgroupBarrier();',
      );
      for (let e = 0; e < (F * F) / SUBGROUP_SIZE; e++) {
        const write = `result[cBase + row * uniforms.N + col] = act(Cs[sg * ${F * F}u + q] * unscale + ${biasRead});`;
        store.push(
          `{ let q = lane + ${e * SUBGROUP_SIZE}u; let row = m0 + i32(rowSub) + ${i * F} + i32(q / ${F}u); let col = n0 + i32(colSub) + ${j * F} + i32(q % ${F}u);`,
          `  ${guard.length ? `if (${guard.join(' && ')}) { ${write} }` : write} }`,
        );
      }
      store.push('workgroupBarrier();');
    }
  const inputs = [...(s.bias === 'none' ? ['A', 'B'] : ['A', 'B', 'Bias']), 'SA', 'SB'];
  return {
    variableNames: inputs,
    outputShape: [s.batch * s.splits * s.m * s.n],
    shaderKey: f16MatMulShaderKey(s),
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(s.n / tn), Math.ceil(s.m / tm), s.batch * s.splits],
    workgroupSize: [threads, 1, 1],
    size: false,
    uniforms: `M : i32, N : i32, K : i32, aBatchStride : i32, bBatchStride : i32, splits : i32, kChunk : i32, kSteps : i32,${s.activation === 'leakyrelu' ? ' alpha : f32,' : ''}`,
    getUserCode: () => `
      ${F16_DIRECTIVES.join('\n      ')}
      var<workgroup> As : array<f16, ${tm * tk}>; // A's K slice as stored: [tm][tk] or [tk][tm]
      var<workgroup> Bs : array<f16, ${tk * tn}>; // B's K slice as stored: [tk][tn] or [tn][tk]
      var<workgroup> Cs : array<f32, ${sgm * sgn * F * F}>; // one 16×16 result per subgroup, on its way out
      fn act(v : f32) -> f32 { return ${MATMUL_ACTIVATIONS[s.activation]}; }
      // The exponent e with max |x|·2^e in (2^14, 2^15]; 0 for an all-zero or non-finite operand.
      fn scaleExponent(amax : f32) -> i32 {
        if (!(amax > 0.0) || amax > 3.0e38) { return 0; }
        return clamp(15 - i32(ceil(log2(amax))), -60, 60);
      }
      fn main(index : i32) {
        let eA = scaleExponent(SA[0]);
        let eB = scaleExponent(SB[0]);
        let scaleA = ldexp(1.0, eA);
        let scaleB = ldexp(1.0, eB);
        let unscale = ldexp(1.0, -(eA + eB));
        let t = i32(localIndex);
        let sg = localIndex / ${SUBGROUP_SIZE}u; // subgroup (warp) of this invocation
        let lane = localIndex % ${SUBGROUP_SIZE}u;
        let rowSub = (sg / ${sgn}u) * ${subRows}u; // the subgroup's block inside the tile
        let colSub = (sg % ${sgn}u) * ${subCols}u;
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
        // A uniform trip count (barriers and subgroup matrices need uniform control flow); loads stop at kEnd.
        for (var step = 0; step < uniforms.kSteps; step = step + 1) {
          let k0 = kBegin + step * ${tk};
          ${stageSnippet('A', tm, tk, threads, !s.transposeA, !al.m, !al.k || s.splits > 1, 'uniforms.M', 'm0')}
          ${stageSnippet('B', tn, tk, threads, s.transposeB, !al.n, !al.k || s.splits > 1, 'uniforms.N', 'n0')}
          workgroupBarrier();
          ${mma.join('\n          ')}
          workgroupBarrier();
        }
        ${store.join('\n        ')}
      }
    `,
  };
}
