import { type FlatProgram, flatProgram } from './wgsl.ts';

/**
 * WGSL programs of the fused causal attention (`flash-attention.ts`). Shapes: q, o, do [BH, Tq, hd]; k, v [BH, Tk, hd];
 * lse, D [BH, Tq]. Query row i sits at position `off + i` and sees keys j ≤ off + i (j < Tk): off = 0 is ordinary
 * causal attention, off > 0 a query chunk of a longer sequence (MsT).
 *
 * Layout `packed` (off = 0, Tq = Tk = T): q, k and v are read where the qkv projection wrote them, qkv [B, T, 3, H, hd]
 * (one buffer, `QKV`); o and do are [B, T, H, hd], lse and D [B, T, H]; dq, dk and dv are written into one dqkv
 * [B, T, 3, H, hd] (the dq program creates it, the dk/dv program writes the rest in place). So the model's head split
 * and merge (a transpose, a split, a concat and their gradients) never run. Every address goes through the WGSL
 * functions of `addressing`.
 *
 * Every program gives each thread one row (a query for the forward and dq, a key for dk and dv), holds that row's
 * vectors in vec4 registers (the head dimension unrolled at generation) and streams tiles of the other side through
 * workgroup memory, where every thread reads the same entry (a broadcast). Tiles no row of the workgroup can see are
 * neither loaded nor computed (loop trip counts come from uniforms: `workgroupBarrier` needs uniform control flow,
 * and tfjs's `workgroupId` is a private variable, which WGSL's uniformity analysis treats as non-uniform). Tiles fit
 * WebGPU's default 16 KiB of workgroup memory. The [Tq, Tk] scores never exist: forward keeps a running max and sum
 * per row (online softmax, 4 keys at a time), the backward recomputes p = exp(s − lse) from the saved row lse.
 */

/**
 * Rows (threads) per workgroup by default; `FlashShape.rows` may say 64 (`KSTAR_FLASH_ROWS`, flash-attention.ts). 128
 * measured faster on the H200 (gpt2-124m f16-mixed step 38,853 against 35,027 tokens/s with 64): each tile streamed
 * through workgroup memory serves twice the rows.
 */
export const FLASH_ROWS = 128;

/** Head dims the native kernels take (a multiple of 4 up to 128: registers hold 2–3 rows of hd floats). */
export function flashHeadDimOk(hd: number): boolean {
  return Number.isInteger(hd) && hd >= 4 && hd <= 128 && hd % 4 === 0;
}

/** Keys per tile of the forward and dq (K and V tiles: 2·tile·hd floats ≤ 4,096). */
export function keyTile(hd: number): number {
  return Math.min(64, Math.floor(2048 / hd / 4) * 4);
}

/** Queries per tile of dk and dv (q and do tiles plus two per-row scalars: 2·tile·(hd + 1) floats ≤ 4,096). */
export function queryTile(hd: number): number {
  return Math.min(64, Math.floor(2048 / (hd + 1) / 4) * 4);
}

export interface FlashShape {
  /** Batch × heads. */
  bh: number;
  tq: number;
  tk: number;
  hd: number;
  /** Unroll the head-dimension loops at generation (see `each`). */
  unroll: boolean;
  /** `bhtd`: q, k, v, o [B, H, T, hd]; `packed`: see the file comment. */
  layout: FlashLayout;
  /** Heads (the `packed` layout's addresses need them). */
  heads: number;
  /** Rows (threads) per workgroup: 64 or 128 (≥ every tile, so one pass of threads loads a tile's lse and D). */
  rows: number;
}

export type FlashLayout = 'bhtd' | 'packed';

/** The input binding names of q, k and v: three tensors, or the one packed qkv. */
function qkvNames(s: FlashShape): [string, string, string] {
  return s.layout === 'packed' ? ['QKV', 'QKV', 'QKV'] : ['Q', 'K', 'V'];
}

/**
 * WGSL address functions: where row i of head bh starts (floats) in q (`qAt`), k (`kAt`), v (`vAt`), o and do
 * (`oAt`), lse and D (`lAt`, one float per row), and the outputs dq, dk, dv (`dqAt`, `dkAt`, `dvAt`).
 */
function addressing(s: FlashShape): string {
  if (s.layout === 'bhtd')
    return `
      fn qAt(bh : i32, i : i32) -> i32 { return (bh * uniforms.Tq + i) * HD; }
      fn kAt(bh : i32, j : i32) -> i32 { return (bh * uniforms.Tk + j) * HD; }
      fn vAt(bh : i32, j : i32) -> i32 { return kAt(bh, j); }
      fn oAt(bh : i32, i : i32) -> i32 { return qAt(bh, i); }
      fn lAt(bh : i32, i : i32) -> i32 { return bh * uniforms.Tq + i; }
      fn dqAt(bh : i32, i : i32) -> i32 { return qAt(bh, i); }
      fn dkAt(bh : i32, j : i32) -> i32 { return kAt(bh, j); }
      fn dvAt(bh : i32, j : i32) -> i32 { return uniforms.secondAt + kAt(bh, j); }`;
  return `
      fn headRow(bh : i32, i : i32) -> i32 { let b = bh / uniforms.H; return (b * uniforms.Tq + i) * uniforms.H + bh - b * uniforms.H; }
      fn qAt(bh : i32, i : i32) -> i32 { let b = bh / uniforms.H; return ((b * uniforms.Tq + i) * 3 * uniforms.H + bh - b * uniforms.H) * HD; }
      fn kAt(bh : i32, j : i32) -> i32 { return qAt(bh, j) + uniforms.H * HD; }
      fn vAt(bh : i32, j : i32) -> i32 { return qAt(bh, j) + 2 * uniforms.H * HD; }
      fn oAt(bh : i32, i : i32) -> i32 { return headRow(bh, i) * HD; }
      fn lAt(bh : i32, i : i32) -> i32 { return headRow(bh, i); }
      fn dqAt(bh : i32, i : i32) -> i32 { return qAt(bh, i); }
      fn dkAt(bh : i32, j : i32) -> i32 { return kAt(bh, j); }
      fn dvAt(bh : i32, j : i32) -> i32 { return vAt(bh, j); }`;
}

const range = (n: number) => Array.from({ length: n }, (_, c) => c);

/**
 * Head-dimension loops: unrolled at generation (`c` a literal) or a WGSL loop over `c`. The row registers are
 * `array<vec4<f32>, hd / 4>` either way (constant indices after unrolling). Mesa lavapipe takes minutes to compile
 * the unrolled hd = 64 programs (LLVM), so `unroll` is an option (`KSTAR_FLASH_UNROLL`, see flash-attention.ts).
 */
function each(n4: number, unroll: boolean, stmt: (c: string) => string): string {
  if (unroll)
    return range(n4)
      .map((c) => stmt(String(c)))
      .join('\n');
  return `for (var c = 0; c < ${n4}; c = c + 1) { ${stmt('c')} }`;
}

/** A register row `name` [hd / 4 vec4] loaded from row `base` of `src` (hd floats), times `mul`. */
function loadRow(name: string, src: string, base: string, n4: number, unroll: boolean, mul = ''): string {
  return `var ${name} : array<vec4<f32>, ${n4}>;
        ${each(
          n4,
          unroll,
          (c) =>
            `${name}[${c}] = vec4<f32>(${src}[${base} + 4 * ${c}], ${src}[${base} + 4 * ${c} + 1], ${src}[${base} + 4 * ${c} + 2], ${src}[${base} + 4 * ${c} + 3])${mul};`,
        )}`;
}

/** `let out = Σ a · b[base …]` (registers · workgroup row): vec4 FMAs, then one horizontal sum. */
function dotRow(out: string, a: string, b: string, base: string, n4: number, unroll: boolean): string {
  return `var ${out}v = vec4<f32>(0.0);
        ${each(n4, unroll, (c) => `${out}v = fma(${a}[${c}], ${b}[${base} + ${c}], ${out}v);`)}
        let ${out} = dot(${out}v, vec4<f32>(1.0));`;
}

/**
 * Cooperative tile load: `rows` rows of hd floats from `src` (row `first + r` clamped to `last`, starting at
 * `at(bh, row)`) into `dst`.
 */
function loadTile(
  threads: number,
  dst: string,
  src: string,
  at: string,
  first: string,
  last: string,
  rows: number,
  n4: number,
): string {
  return `for (var e = t; e < ${rows * n4}; e = e + ${threads}) {
          let r = min(${first} + e / ${n4}, ${last});
          let a = ${at}(bh, r) + (e % ${n4}) * 4;
          ${dst}[e] = vec4<f32>(${src}[a], ${src}[a + 1], ${src}[a + 2], ${src}[a + 3]);
        }`;
}

function program(
  s: FlashShape,
  key: string,
  inputs: string[],
  outputSize: number,
  rows: number,
  bh: number,
  code: string,
): FlatProgram {
  return {
    variableNames: inputs,
    outputShape: [outputSize],
    shaderKey: `kstar_flash_${key}_r${s.rows}`, // callers add hd, unroll and layout
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(rows / s.rows), bh, 1],
    workgroupSize: [s.rows, 1, 1],
    size: false,
    uniforms: 'Tq : i32, Tk : i32, off : i32, nTiles : i32, scale : f32, secondAt : i32, H : i32,',
    getUserCode: () => code,
  };
}

/** Uniform values in the order of `program`'s `uniforms`. */
export function flashUniforms(
  s: FlashShape,
  off: number,
  nTiles: number,
  scale: number,
  secondAt = s.bh * s.tq * s.hd,
): Array<{ type: 'float32' | 'int32'; data: number[] }> {
  return [
    { type: 'int32', data: [s.tq] },
    { type: 'int32', data: [s.tk] },
    { type: 'int32', data: [off] },
    { type: 'int32', data: [nTiles] },
    { type: 'float32', data: [scale] },
    // where the second output starts: lse in the forward's output, dv in the one-pass dk/dv output
    { type: 'int32', data: [secondAt] },
    { type: 'int32', data: [s.heads] },
  ];
}

/** Query-row preamble shared by the forward and dq: row i, its last visible key, the workgroup's last one. */
const queryRow = (s: FlashShape) => `
        let t = i32(localId.x);
        let bh = i32(workgroupId.y);
        let q0 = i32(workgroupId.x) * ${s.rows};
        let i = q0 + t;
        let ic = min(i, uniforms.Tq - 1);
        let lim = min(uniforms.off + ic, uniforms.Tk - 1);
        let wlim = min(uniforms.off + min(q0 + ${s.rows}, uniforms.Tq) - 1, uniforms.Tk - 1);
        let qRow = qAt(bh, ic);
        let oRow = oAt(bh, ic);`;

/** Writes register row `acc` times `f` to row `base` of the result. */
function storeRow(acc: string, base: string, f: string, n4: number, unroll: boolean): string {
  return each(
    n4,
    unroll,
    (c) =>
      `{ let w = ${acc}[${c}] * ${f}; result[${base} + 4 * ${c}] = w.x; result[${base} + 4 * ${c} + 1] = w.y; result[${base} + 4 * ${c} + 2] = w.z; result[${base} + 4 * ${c} + 3] = w.w; }`,
  );
}

const zeroRow = (name: string, n4: number) => `var ${name} : array<vec4<f32>, ${n4}>;`;

/**
 * Forward: o [BH, Tq, hd] followed by lse [BH, Tq] in one flat output (tfjs programs have one output).
 * lse = max + log Σ exp(scale·q·k − max) over the row's visible keys; o = Σ p·v.
 */
export function flashForwardProgram(s: FlashShape): FlatProgram {
  const n4 = s.hd / 4;
  const u = s.unroll;
  const bc = keyTile(s.hd);
  const [Q, K, V] = qkvNames(s);
  const code = `
      const HD : i32 = ${s.hd};
      ${addressing(s)}
      var<workgroup> Ks : array<vec4<f32>, ${bc * n4}>; // [tile][hd / 4]
      var<workgroup> Vs : array<vec4<f32>, ${bc * n4}>;
      fn main(index : i32) {
        ${queryRow(s)}
        ${loadRow('qr', Q, 'qRow', n4, u, ' * uniforms.scale')}
        ${zeroRow('acc', n4)}
        var m = -3.0e38;
        var l = 0.0;
        for (var kt = 0; kt < uniforms.nTiles; kt = kt + 1) {
          let k0 = kt * ${bc};
          if (k0 <= wlim) {
            ${loadTile(s.rows, 'Ks', K, 'kAt', 'k0', 'uniforms.Tk - 1', bc, n4)}
            ${loadTile(s.rows, 'Vs', V, 'vAt', 'k0', 'uniforms.Tk - 1', bc, n4)}
          }
          workgroupBarrier();
          if (k0 <= lim) {
            let jEnd = min(${bc}, lim - k0 + 1);
            for (var j = 0; j < jEnd; j = j + 4) {
              let b0 = j * ${n4};
              ${dotRow('s0', 'qr', 'Ks', 'b0', n4, u)}
              ${dotRow('s1', 'qr', 'Ks', `b0 + ${n4}`, n4, u)}
              ${dotRow('s2', 'qr', 'Ks', `b0 + ${2 * n4}`, n4, u)}
              ${dotRow('s3', 'qr', 'Ks', `b0 + ${3 * n4}`, n4, u)}
              let ok = vec4<bool>(j < jEnd, j + 1 < jEnd, j + 2 < jEnd, j + 3 < jEnd);
              let sv = select(vec4<f32>(-3.0e38), vec4<f32>(s0, s1, s2, s3), ok);
              let mNew = max(m, max(max(sv.x, sv.y), max(sv.z, sv.w)));
              let corr = exp(m - mNew);
              let p = select(vec4<f32>(0.0), exp(sv - vec4<f32>(mNew)), ok);
              l = l * corr + (p.x + p.y) + (p.z + p.w);
              m = mNew;
              ${each(
                n4,
                u,
                (c) =>
                  `acc[${c}] = fma(vec4<f32>(p.w), Vs[b0 + ${3 * n4} + ${c}], fma(vec4<f32>(p.z), Vs[b0 + ${2 * n4} + ${c}], fma(vec4<f32>(p.y), Vs[b0 + ${n4} + ${c}], fma(vec4<f32>(p.x), Vs[b0 + ${c}], acc[${c}] * corr))));`,
              )}
            }
          }
          workgroupBarrier();
        }
        if (i < uniforms.Tq) {
          let inv = 1.0 / l;
          ${storeRow('acc', 'oRow', 'inv', n4, u)}
          result[uniforms.secondAt + lAt(bh, i)] = m + log(l);
        }
      }
    `;
  return program(
    s,
    `fwd_${s.hd}_${u}_${s.layout}`,
    [...new Set([Q, K, V])],
    s.bh * s.tq * (s.hd + 1),
    s.tq,
    s.bh,
    code,
  );
}

/** D = rowsum(do ∘ o) [BH·Tq], one thread per row. */
export function flashRowDotProgram(s: FlashShape): FlatProgram {
  return flatProgram({
    key: `flash_rowdot_${s.hd}`,
    size: s.bh * s.tq,
    inputs: ['O', 'DO'],
    body: `
      let b = index * ${s.hd};
      var acc = 0.0;
      for (var c = 0; c < ${s.hd}; c = c + 1) { acc = fma(O[b + c], DO[b + c], acc); }
      result[index] = acc;`,
  });
}

/** dq = scale · Σ_j p·(dp − D)·k over the row's visible keys, p = exp(scale·q·k − lse), dp = do·v. */
export function flashDqProgram(s: FlashShape): FlatProgram {
  const n4 = s.hd / 4;
  const u = s.unroll;
  const bc = keyTile(s.hd);
  const [Q, K, V] = qkvNames(s);
  const code = `
      const HD : i32 = ${s.hd};
      ${addressing(s)}
      var<workgroup> Ks : array<vec4<f32>, ${bc * n4}>;
      var<workgroup> Vs : array<vec4<f32>, ${bc * n4}>;
      fn main(index : i32) {
        ${queryRow(s)}
        ${loadRow('qr', Q, 'qRow', n4, u, ' * uniforms.scale')}
        ${loadRow('gr', 'DO', 'oRow', n4, u)}
        ${zeroRow('acc', n4)}
        let li = L[lAt(bh, ic)];
        let di = DD[lAt(bh, ic)];
        for (var kt = 0; kt < uniforms.nTiles; kt = kt + 1) {
          let k0 = kt * ${bc};
          if (k0 <= wlim) {
            ${loadTile(s.rows, 'Ks', K, 'kAt', 'k0', 'uniforms.Tk - 1', bc, n4)}
            ${loadTile(s.rows, 'Vs', V, 'vAt', 'k0', 'uniforms.Tk - 1', bc, n4)}
          }
          workgroupBarrier();
          if (k0 <= lim) {
            let jEnd = min(${bc}, lim - k0 + 1);
            for (var j = 0; j < jEnd; j = j + 1) {
              let b0 = j * ${n4};
              ${dotRow('sq', 'qr', 'Ks', 'b0', n4, u)}
              ${dotRow('dp', 'gr', 'Vs', 'b0', n4, u)}
              let ds = vec4<f32>(exp(sq - li) * (dp - di));
              ${each(n4, u, (c) => `acc[${c}] = fma(ds, Ks[b0 + ${c}], acc[${c}]);`)}
            }
          }
          workgroupBarrier();
        }
        if (i < uniforms.Tq) {
          ${storeRow('acc', 'dqAt(bh, i)', 'uniforms.scale', n4, u)}
        }
      }
    `;
  // packed: the output is the whole dqkv [B, T, 3, H, hd]; the dk/dv program fills the rest in place.
  const size = s.bh * s.tq * s.hd * (s.layout === 'packed' ? 3 : 1);
  return program(
    s,
    `dq_${s.hd}_${u}_${s.layout}`,
    [...new Set([Q, K, V]), 'DO', 'L', 'DD'],
    size,
    s.tq,
    s.bh,
    code,
  );
}

/**
 * dk = scale · Σ_i p·(dp − D)·q, or dv = Σ_i p·do, or both (`dkv`), over the queries that see key j (off + i ≥ j);
 * one thread per key, query tiles (q, do, lse, D) streamed. `dkv` computes p once for both and writes dk then dv
 * into one flat output [2 · BH·Tk·hd] (four rows of hd floats per thread instead of three: the one-pass variant
 * trades registers for half the score recomputation and one pass over the query tiles).
 */
export function flashDkvProgram(s: FlashShape, which: 'dk' | 'dv' | 'dkv'): FlatProgram {
  const n4 = s.hd / 4;
  const u = s.unroll;
  const bq = queryTile(s.hd);
  const dk = which !== 'dv'; // needs v, do·v and D
  const dv = which !== 'dk';
  const accumulate =
    which === 'dkv'
      ? `let p = exp(sk - Ls[ii]);
            ${dotRow('dp', 'vr', 'Gs', 'b0', n4, u)}
            let w = vec4<f32>(p * (dp - Ds[ii]));
            let pv = vec4<f32>(p);
            ${each(n4, u, (c) => `acc[${c}] = fma(w, Qs[b0 + ${c}], acc[${c}]); accV[${c}] = fma(pv, Gs[b0 + ${c}], accV[${c}]);`)}`
      : dk
        ? `${dotRow('dp', 'vr', 'Gs', 'b0', n4, u)}
            let w = vec4<f32>(exp(sk - Ls[ii]) * (dp - Ds[ii]));
            ${each(n4, u, (c) => `acc[${c}] = fma(w, Qs[b0 + ${c}], acc[${c}]);`)}`
        : `let w = vec4<f32>(exp(sk - Ls[ii]));
            ${each(n4, u, (c) => `acc[${c}] = fma(w, Gs[b0 + ${c}], acc[${c}]);`)}`;
  const size = s.bh * s.tk * s.hd;
  const [Q, K, V] = qkvNames(s);
  const code = `
      const HD : i32 = ${s.hd};
      ${addressing(s)}
      var<workgroup> Qs : array<vec4<f32>, ${bq * n4}>;
      var<workgroup> Gs : array<vec4<f32>, ${bq * n4}>;
      var<workgroup> Ls : array<f32, ${bq}>;
      ${dk ? `var<workgroup> Ds : array<f32, ${bq}>;` : ''}
      fn main(index : i32) {
        let t = i32(localId.x);
        let bh = i32(workgroupId.y);
        let j0 = i32(workgroupId.x) * ${s.rows};
        let j = j0 + t;
        let jc = min(j, uniforms.Tk - 1);
        ${loadRow('kr', K, 'kAt(bh, jc)', n4, u, ' * uniforms.scale')}
        ${dk ? loadRow('vr', V, 'vAt(bh, jc)', n4, u) : ''}
        ${zeroRow('acc', n4)}
        ${which === 'dkv' ? zeroRow('accV', n4) : ''}
        for (var qt = 0; qt < uniforms.nTiles; qt = qt + 1) {
          let i0 = qt * ${bq};
          // Query i sees key j when off + i ≥ j: the workgroup's first key j0 is seen by the most queries.
          if (uniforms.off + min(i0 + ${bq}, uniforms.Tq) - 1 >= j0) {
            ${loadTile(s.rows, 'Qs', Q, 'qAt', 'i0', 'uniforms.Tq - 1', bq, n4)}
            ${loadTile(s.rows, 'Gs', 'DO', 'oAt', 'i0', 'uniforms.Tq - 1', bq, n4)}
            if (t < ${bq}) {
              let r = lAt(bh, min(i0 + t, uniforms.Tq - 1));
              Ls[t] = L[r];
              ${dk ? 'Ds[t] = DD[r];' : ''}
            }
          }
          workgroupBarrier();
          let iFrom = clamp(jc - uniforms.off - i0, 0, ${bq});
          let iTo = min(${bq}, uniforms.Tq - i0);
          for (var ii = iFrom; ii < iTo; ii = ii + 1) {
            let b0 = ii * ${n4};
            ${dotRow('sk', 'kr', 'Qs', 'b0', n4, u)}
            ${accumulate}
          }
          workgroupBarrier();
        }
        if (j < uniforms.Tk) {
          ${storeRow('acc', 'dkAt(bh, j)', dv && !dk ? '1.0' : 'uniforms.scale', n4, u)}
          ${which === 'dkv' ? storeRow('accV', 'dvAt(bh, j)', '1.0', n4, u) : ''}
        }
      }
    `;
  if (s.layout === 'packed' && which !== 'dkv')
    throw new Error(`flashDkvProgram: the packed layout writes dk and dv in one pass, not '${which}'`);
  return program(
    s,
    `${which}_${s.hd}_${u}_${s.layout}`,
    dk ? [...new Set([Q, K, V]), 'DO', 'L', 'DD'] : [...new Set([Q, K]), 'DO', 'L'],
    // packed: written in place into the dq program's dqkv output (this size is that buffer's)
    s.layout === 'packed' ? 3 * size : which === 'dkv' ? 2 * size : size,
    s.tk,
    s.bh,
    code,
  );
}
