import {
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
import type { FlatProgram } from './wgsl.ts';

/**
 * The f16-mixed batched matrix product for WebGPU on tensor cores (`--matmul-precision f16-mixed`): C[b] =
 * act(op(A[b])·op(B[b]) + bias) with A, B and C float32 in memory, the operands rounded to f16 when staged in
 * workgroup memory, and every 16×16×16 product accumulated in f32 by `subgroupMatrixMultiplyAccumulate` (Dawn's
 * `chromium-experimental-subgroup-matrix`, Vulkan cooperative matrices underneath).
 *
 * A workgroup computes a `tm × tn` tile of C with `sgm × sgn` subgroups of 32 invocations, each owning a
 * `(tm/sgm) × (tn/sgn)` block of 16×16 result matrices (8 or 16 accumulators per subgroup). Transposes cost nothing:
 * each operand's K slice is copied in its stored layout (reads coalesced along its contiguous axis, as vec4<f32>
 * where that axis is a multiple of 4) and `subgroupMatrixLoad` reads it row- or column-major as stored; each row of
 * the slice is padded by `pad` halves (16 bytes), so the 16 rows of a fragment start in different banks. With two
 * buffers the next K slice is read from global memory into registers while the current one is multiplied, then
 * written to the other buffer: one barrier per K slice instead of two, and the global reads' latency hidden behind
 * the multiplies. The results go out through a 16×16 f32 scratch per subgroup, where bias, activation and the bounds
 * of odd sizes are applied. One buffer measured faster than two on the H200 (see `F16_TILES`), so two are a variant.
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
  /** Halves added to each row of a staged slice (8 = 16 bytes: fragment rows in different banks; 0 = none). */
  pad: number;
  /** 2: the next K slice is read while the current one is multiplied (double-buffered); 1: one buffer. */
  buffers: 1 | 2;
}

/** The subgroup matrix shape (M × N × K) the kernel uses: f16 × f16 → f32, offered by NVIDIA's Vulkan driver. */
export const FRAGMENT = 16;
/** Invocations per subgroup the kernel assumes (NVIDIA's warp; the support check requires it). */
export const SUBGROUP_SIZE = 32;
/** Workgroup memory Dawn gives on the H200 (the adapter's maxComputeWorkgroupStorageSize, requested in full). */
export const F16_WORKGROUP_BYTES = 48 * 1024;

/**
 * `large` and `small` are the per-shape choices (webgpu-matmul-tiles.ts); the others are variants `pnpm bench matmul
 * --choices kstar-f16-<tile>` measures against them: `double` two buffers, `quad` 4 subgroups of 64×64 (16
 * accumulators each), `tall` a 256×128 tile with a K slice of 16 (both double-buffered), `unpadded` no row padding.
 * Measured on the H200 (bench/results/2026-12-03-s3-h200-f16-tiles.json): one padded buffer with vec4 reads is the
 * fastest (LM head 68–69 TFLOP/s against 46 double-buffered, 16 quad, 45–47 tall, 36–37 double-buffered unpadded):
 * two buffers take 48 KiB of workgroup memory and the prefetch registers, and fewer workgroups fit on an SM.
 */
export const F16_TILES = {
  large: { tm: 128, tn: 128, tk: 32, sgm: 2, sgn: 4, pad: 8, buffers: 1 },
  small: { tm: 64, tn: 64, tk: 32, sgm: 2, sgn: 2, pad: 8, buffers: 1 },
  double: { tm: 128, tn: 128, tk: 32, sgm: 2, sgn: 4, pad: 8, buffers: 2 },
  quad: { tm: 128, tn: 128, tk: 32, sgm: 2, sgn: 2, pad: 8, buffers: 2 },
  tall: { tm: 256, tn: 128, tk: 16, sgm: 4, sgn: 2, pad: 8, buffers: 2 },
  unpadded: { tm: 128, tn: 128, tk: 32, sgm: 2, sgn: 4, pad: 0, buffers: 1 },
} as const satisfies Record<string, SubgroupMatrixTile>;

export type F16TileName = keyof typeof F16_TILES;

export function isF16TileName(name: string): name is F16TileName {
  return Object.hasOwn(F16_TILES, name);
}

/** The frame's shape with a subgroup-matrix tile. */
export type F16MatMulSpec = Omit<MatMulShape, 'tile'> & { tile: SubgroupMatrixTile };

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

/** One staged operand slice in its stored layout: `lines` rows of `stride` halves (`rows` + or `tk` + pad). */
function sliceLayout(
  t: SubgroupMatrixTile,
  rows: number,
  kContiguous: boolean,
): { lines: number; stride: number; halves: number } {
  const lines = kContiguous ? rows : t.tk;
  const stride = (kContiguous ? t.tk : rows) + t.pad;
  return { lines, stride, halves: lines * stride };
}

/** Bytes of workgroup memory for operands stored as given: the K slices (× buffers) and a 16×16 f32 per subgroup. */
export function f16WorkgroupBytes(t: SubgroupMatrixTile, transposeA: boolean, transposeB: boolean): number {
  const a = sliceLayout(t, t.tm, !transposeA).halves;
  const b = sliceLayout(t, t.tn, transposeB).halves;
  return 2 * t.buffers * (a + b) + 4 * t.sgm * t.sgn * FRAGMENT * FRAGMENT;
}

/** The most workgroup memory the tile takes over the four transpose combinations. */
export function f16TileWorkgroupBytes(t: SubgroupMatrixTile): number {
  return Math.max(...[false, true].flatMap((ta) => [false, true].map((tb) => f16WorkgroupBytes(t, ta, tb))));
}

/** Throws unless the tile splits into whole 16×16 fragments per subgroup and whole vec4 loads per invocation. */
export function checkF16Tile(t: SubgroupMatrixTile): void {
  const threads = f16TileThreads(t);
  const ok =
    t.tk % FRAGMENT === 0 &&
    t.tm % (t.sgm * FRAGMENT) === 0 &&
    t.tn % (t.sgn * FRAGMENT) === 0 &&
    threads <= 256 &&
    (t.tm * t.tk) % (4 * threads) === 0 &&
    (t.tn * t.tk) % (4 * threads) === 0 &&
    t.pad % 8 === 0 &&
    f16TileWorkgroupBytes(t) <= F16_WORKGROUP_BYTES;
  if (!ok)
    throw new Error(
      `f16 matmul tile ${JSON.stringify(t)} is invalid: need tk, tm/sgm and tn/sgn multiples of 16, ≤ 256 invocations (sgm·sgn·32), tm·tk and tn·tk divisible by 4× them, pad a multiple of 8 and ≤ ${F16_WORKGROUP_BYTES} bytes of workgroup memory`,
    );
}

/** Whether each operand is read as vec4<f32>: its contiguous axis (K, or M / N where transposed) a multiple of 4. */
export function f16VectorReads(s: F16MatMulSpec): { a: boolean; b: boolean } {
  return {
    a: (s.transposeA ? s.m : s.k) % 4 === 0,
    b: (s.transposeB ? s.k : s.n) % 4 === 0,
  };
}

export function f16MatMulShaderKey(s: F16MatMulSpec): string {
  const t = s.tile;
  const v = f16VectorReads(s);
  return matMulKey(s, 'kstar_mm_f16', `${t.tm}x${t.tn}x${t.tk}_${t.sgm}x${t.sgn}_p${t.pad}_b${t.buffers}`, [
    `v${+v.a}${+v.b}`,
  ]);
}

/** The `WebGPUProgram` for `runWebGPUProgram(program, [flat A, flat B, (flat bias), SA, SB], 'float32', uniforms)`. */
export function f16MatMulProgram(s: F16MatMulSpec): FlatProgram & { variableComponents?: number[] } {
  const t = s.tile;
  checkF16Tile(t);
  const threads = f16TileThreads(t);
  const { tm, tn, tk, sgm, sgn } = t;
  const F = FRAGMENT;
  const subRows = tm / sgm;
  const subCols = tn / sgn;
  const fragsM = subRows / F;
  const fragsN = subCols / F;
  const al = matMulAlignment(s);
  const vec = f16VectorReads(s);
  const checkK = !al.k || s.splits > 1;
  const staging = (name: 'A' | 'B'): OperandStaging => ({
    name,
    rows: name === 'A' ? tm : tn,
    tk,
    threads,
    kContiguous: name === 'A' ? !s.transposeA : s.transposeB,
    checkRows: name === 'A' ? !al.m : !al.n,
    checkK,
    width: (name === 'A' ? vec.a : vec.b) ? 4 : 1,
    rowsUniform: name === 'A' ? 'uniforms.M' : 'uniforms.N',
    rowOrigin: name === 'A' ? 'm0' : 'n0',
  });
  const stA = staging('A');
  const stB = staging('B');
  const layA = sliceLayout(t, tm, stA.kContiguous);
  const layB = sliceLayout(t, tn, stB.kContiguous);
  // Registers → f16 in workgroup memory at buffer offset `wbuf` (halves), in the stored layout.
  const place = (o: OperandStaging, stride: number) => (v: string, rr: string, kk: string) => {
    const at = o.kContiguous
      ? `wbuf${o.name} + ${rr} * ${stride} + ${kk}`
      : `wbuf${o.name} + ${kk} * ${stride} + ${rr}`;
    if (o.width === 1) return `${o.name}s[${at}] = f16(${v} * scale${o.name});`;
    return `{ let h = vec4<f16>(${v} * scale${o.name}); let at = ${at}; ${[0, 1, 2, 3].map((c) => `${o.name}s[at + ${c}] = h[${c}];`).join(' ')} }`;
  };
  const reads = [...operandReads(stA), ...operandReads(stB)].join('\n          ');
  const places = [
    ...operandPlaces(stA, place(stA, layA.stride)),
    ...operandPlaces(stB, place(stB, layB.stride)),
  ].join('\n          ');
  // Left matrices: [tm, tk] k-contiguous (row-major) or [tk, tm] m-contiguous (column-major); right matrices:
  // [tk, tn] n-contiguous (row-major) or [tn, tk] k-contiguous (column-major). Strides include the padding.
  const aRowMajor = stA.kContiguous;
  const bRowMajor = !stB.kContiguous;
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
      const offset = aRowMajor ? `(${row}) * ${layA.stride}u + ${k}u` : `${k * layA.stride}u + ${row}`;
      mma.push(
        `let a_${kf}_${i} = subgroupMatrixLoad<${left}>(&As, rbufA + ${offset}, ${!aRowMajor}, ${layA.stride}u);`,
      );
    }
    for (let j = 0; j < fragsN; j++) {
      const col = `colSub + ${j * F}u`;
      const offset = bRowMajor ? `${k * layB.stride}u + ${col}` : `(${col}) * ${layB.stride}u + ${k}u`;
      mma.push(
        `let b_${kf}_${j} = subgroupMatrixLoad<${right}>(&Bs, rbufB + ${offset}, ${!bRowMajor}, ${layB.stride}u);`,
      );
    }
    for (let i = 0; i < fragsM; i++)
      for (let j = 0; j < fragsN; j++)
        mma.push(
          `acc_${i}_${j} = subgroupMatrixMultiplyAccumulate(a_${kf}_${i}, b_${kf}_${j}, acc_${i}_${j});`,
        );
  }
  const store: string[] = [];
  for (let i = 0; i < fragsM; i++)
    for (let j = 0; j < fragsN; j++) {
      store.push(
        `subgroupMatrixStore(&Cs, sg * ${F * F}u, acc_${i}_${j}, false, ${F}u);`,
        'workgroupBarrier();',
      );
      for (let e = 0; e < (F * F) / SUBGROUP_SIZE; e++)
        store.push(
          `{ let q = lane + ${e * SUBGROUP_SIZE}u; let row = m0 + i32(rowSub) + ${i * F} + i32(q / ${F}u); let col = n0 + i32(colSub) + ${j * F} + i32(q % ${F}u);`,
          `  ${matMulWrite(s, `Cs[sg * ${F * F}u + q] * unscale`)} }`,
        );
      store.push('workgroupBarrier();');
    }
  const double = t.buffers === 2;
  // One buffer: read, place, barrier, multiply, barrier. Two: the slice after this one is read into registers
  // before the multiplies and placed in the other buffer after them; one barrier per slice.
  const loop = double
    ? `{ let k0 = kBegin; ${reads}
          let wbufA = 0; let wbufB = 0;
          ${places} }
        workgroupBarrier();
        for (var step = 0; step < uniforms.kSteps; step = step + 1) {
          let buffer = step & 1;
          let rbufA = u32(buffer) * ${layA.halves}u;
          let rbufB = u32(buffer) * ${layB.halves}u;
          let more = step + 1 < uniforms.kSteps; // uniform
          if (more) { let k0 = kBegin + (step + 1) * ${tk};
          ${reads} }
          ${mma.join('\n          ')}
          if (more) { let wbufA = (1 - buffer) * ${layA.halves}; let wbufB = (1 - buffer) * ${layB.halves};
          ${places} }
          workgroupBarrier();
        }`
    : `for (var step = 0; step < uniforms.kSteps; step = step + 1) {
          let k0 = kBegin + step * ${tk};
          let wbufA = 0; let wbufB = 0; let rbufA = 0u; let rbufB = 0u;
          ${reads}
          ${places}
          workgroupBarrier();
          ${mma.join('\n          ')}
          workgroupBarrier();
        }`;
  const components = [vec.a ? 4 : 1, vec.b ? 4 : 1, ...(s.bias === 'none' ? [] : [1]), 1, 1];
  return matMulFrame(s, {
    key: f16MatMulShaderKey(s),
    workgroupSize: [threads, 1, 1],
    extraInputs: ['SA', 'SB'],
    components,
    userCode: () => `
      ${F16_DIRECTIVES.join('\n      ')}
      var<workgroup> As : array<f16, ${t.buffers * layA.halves}>; // A's K slice(s) as stored: [tm][tk+pad] or [tk][tm+pad]
      var<workgroup> Bs : array<f16, ${t.buffers * layB.halves}>; // B's K slice(s) as stored: [tk][tn+pad] or [tn][tk+pad]
      var<workgroup> Cs : array<f32, ${sgm * sgn * F * F}>; // one 16×16 result per subgroup, on its way out
      ${matMulActivationFn(s)}
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
        ${matMulTileOrigin(s)}
        ${acc.join('\n        ')}
        ${operandRegisters(stA)} ${operandRegisters(stB)}
        // A uniform trip count (barriers and subgroup matrices need uniform control flow); loads stop at kEnd.
        ${loop}
        ${store.join('\n        ')}
      }
    `,
  });
}
