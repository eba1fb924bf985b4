import { describe, expect, it } from 'vitest';
import {
  chooseF16Tile,
  dawnOptions,
  F16_TILES,
  type F16MatMulSpec,
  f16MatMulProgram,
  f16TileWorkgroupBytes,
  hoistShaderDirectives,
  parseWebGPUMatMulPrecision,
  subgroupMatrixSupport,
} from '../src/index.ts';
import { f16WorkgroupBytes } from '../src/webgpu-matmul-f16-program.ts';

// The f16-mixed matmul's WGSL generation and its fallback decisions, without a GPU (lavapipe has no subgroup
// matrices; on the H200 `F16=1 bash scripts/gpu-run.sh` checks the kernel's numbers, and the subgroup-matrix layouts
// were checked there by scripts/webgpu-f16-probe.mjs: bench/results/2026-12-03-h200-f16-probe.json).

const spec = (over: Partial<F16MatMulSpec>): F16MatMulSpec => ({
  tile: F16_TILES.large,
  transposeA: false,
  transposeB: false,
  m: 300,
  n: 200,
  k: 70,
  batch: 2,
  splits: 1,
  bias: 'none',
  activation: 'linear',
  ...over,
});

/** The arguments of every subgroupMatrixLoad of a shader: [kind, col_major, stride]. */
function loads(code: string): Array<[string, string, string]> {
  return [
    ...code.matchAll(/subgroupMatrixLoad<subgroup_matrix_(\w+)<[^>]+>>\(&\w+, [^,]+, (\w+), (\d+)u\)/g),
  ].map((m) => [m[1]!, m[2]!, m[3]!]);
}

describe('f16-mixed WebGPU matmul', () => {
  it('reads each operand in its stored layout: column-major exactly where transposed', () => {
    const t = F16_TILES.large;
    for (const transposeA of [false, true])
      for (const transposeB of [false, true]) {
        const code = f16MatMulProgram(spec({ transposeA, transposeB })).getUserCode();
        const l = loads(code);
        const fragsM = t.tm / t.sgm / 16;
        const fragsN = t.tn / t.sgn / 16;
        const left = l.filter((x) => x[0] === 'left');
        const right = l.filter((x) => x[0] === 'right');
        expect(left).toHaveLength((fragsM * t.tk) / 16);
        expect(right).toHaveLength((fragsN * t.tk) / 16);
        // A stored [M, K]: rows of tk halves (row-major); stored [K, M]: columns of tm (column-major); each padded.
        for (const x of left)
          expect([x[1], x[2]]).toEqual(
            transposeA ? ['true', `${t.tm + t.pad}`] : ['false', `${t.tk + t.pad}`],
          );
        for (const x of right)
          expect([x[1], x[2]]).toEqual(
            transposeB ? ['true', `${t.tk + t.pad}`] : ['false', `${t.tn + t.pad}`],
          );
        const mma = code.match(/subgroupMatrixMultiplyAccumulate\(/g) ?? [];
        expect(mma).toHaveLength((fragsM * fragsN * t.tk) / 16);
      }
    // Barriers per K slice in the loop (the epilogue's are per fragment): two with one buffer, one with two.
    const barriersInLoop = (code: string) =>
      code
        .slice(code.indexOf('for (var step'), code.indexOf('subgroupMatrixStore'))
        .match(/workgroupBarrier\(\)/g);
    expect(barriersInLoop(f16MatMulProgram(spec({ tile: F16_TILES.large })).getUserCode())).toHaveLength(2);
    expect(barriersInLoop(f16MatMulProgram(spec({ tile: F16_TILES.double })).getUserCode())).toHaveLength(1);
  });

  it('sizes workgroup memory within the 48 KiB Dawn gives and guards only unaligned edges', () => {
    for (const tile of Object.values(F16_TILES))
      for (const transposeA of [false, true])
        for (const transposeB of [false, true]) {
          const code = f16MatMulProgram(spec({ tile, transposeA, transposeB })).getUserCode();
          const declared = [...code.matchAll(/array<(f16|f32), (\d+)>/g)].reduce(
            (s, m) => s + Number(m[2]) * (m[1] === 'f16' ? 2 : 4),
            0,
          );
          expect(declared).toBe(f16WorkgroupBytes(tile, transposeA, transposeB));
          expect(declared).toBeLessThanOrEqual(f16TileWorkgroupBytes(tile));
          expect(declared).toBeLessThanOrEqual(48 * 1024);
        }
    const alignedProgram = f16MatMulProgram(spec({ m: 256, n: 256, k: 64 }));
    const aligned = alignedProgram.getUserCode();
    expect(aligned).not.toMatch(/row < uniforms\.M|col < uniforms\.N|k < kEnd/);
    // vec4<f32> reads where the contiguous axis is a multiple of 4, scalar ones elsewhere (k = 70 for A here).
    expect(alignedProgram.variableComponents).toEqual([4, 4, 1, 1]);
    expect(aligned).toMatch(/av0 = A\[\(aBase \+ r \* uniforms\.K \+ k\) \/ 4\]/);
    expect(f16MatMulProgram(spec({ n: 200, k: 70 })).variableComponents).toEqual([1, 4, 1, 1]);
    const odd = f16MatMulProgram(spec({})).getUserCode();
    expect(odd).toMatch(/row < uniforms\.M && col < uniforms\.N/);
    expect(odd).toMatch(/k < kEnd/);
    const p = f16MatMulProgram(spec({ splits: 3 }));
    expect(p.dispatch).toEqual([Math.ceil(200 / 128), Math.ceil(300 / 128), 6]);
    expect(p.outputShape).toEqual([2 * 3 * 300 * 200]);
  });

  it('moves the enable directives ahead of the prelude, once each', () => {
    const code = hoistShaderDirectives(
      'var<private> x : u32;\n  enable f16;\nfn a() {}\n  enable f16;\nenable chromium_experimental_subgroup_matrix;\n',
    );
    expect(code.split('\n').slice(0, 2)).toEqual([
      'enable f16;',
      'enable chromium_experimental_subgroup_matrix;',
    ]);
    expect(code.match(/enable f16;/g)).toHaveLength(1);
    expect(code).toContain('var<private> x : u32;\n');
    expect(hoistShaderDirectives('fn a() { let enabled = 1; }')).toBe('fn a() { let enabled = 1; }');
  });

  it('adds the NVIDIA toggles to Dawn’s options only for f16-mixed, merged into one list', () => {
    expect(dawnOptions('', 'strict')).toEqual([]);
    expect(dawnOptions('', 'f16-mixed')).toEqual([
      'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia',
    ]);
    expect(dawnOptions('backend=vulkan enable-dawn-features=allow_unsafe_apis,foo', 'f16-mixed')).toEqual([
      'backend=vulkan',
      'enable-dawn-features=allow_unsafe_apis,foo,vulkan_enable_f16_on_nvidia',
    ]);
  });

  it('falls back where the adapter lacks subgroup matrices, 32-wide subgroups or an f16→f32 16×16×16 shape', () => {
    const features = new Set(['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix']);
    const f16f32 = { M: 16, N: 16, K: 16, componentType: 'f16', resultComponentType: 'f32' };
    const h200 = { subgroupMinSize: 32, subgroupMaxSize: 32, subgroupMatrixConfigs: [f16f32] };
    expect(subgroupMatrixSupport({ features, info: h200 }).ok).toBe(true);
    // lavapipe: shader-f16 and subgroups (8 wide), no subgroup matrices.
    const lavapipe = subgroupMatrixSupport({
      features: new Set(['shader-f16', 'subgroups']),
      info: { subgroupMinSize: 8, subgroupMaxSize: 8, subgroupMatrixConfigs: [] },
    });
    expect(lavapipe.ok).toBe(false);
    expect(lavapipe.reason).toContain('chromium-experimental-subgroup-matrix');
    expect(subgroupMatrixSupport({ features, info: { ...h200, subgroupMinSize: 16 } }).reason).toContain(
      '16–32',
    );
    const noF32 = { ...h200, subgroupMatrixConfigs: [{ ...f16f32, resultComponentType: 'f16' }] };
    expect(subgroupMatrixSupport({ features, info: noF32 }).ok).toBe(false);
    expect(() => parseWebGPUMatMulPrecision('tf32')).toThrow(/strict or f16-mixed; got 'tf32'/);
  });

  it('takes the 128×128 tile where it fills the GPU, split-K for weight gradients, 64×64 otherwise', () => {
    expect(chooseF16Tile(1, 8192, 2304, 768)).toEqual({ tile: 'large', splits: 1 });
    expect(chooseF16Tile(1, 768, 3072, 8192)).toEqual({ tile: 'large', splits: 4 });
    expect(chooseF16Tile(96, 1024, 64, 1024)).toEqual({ tile: 'small', splits: 1 });
    expect(chooseF16Tile(1, 40, 30, 20)).toEqual({ tile: 'small', splits: 1 });
  });
});
