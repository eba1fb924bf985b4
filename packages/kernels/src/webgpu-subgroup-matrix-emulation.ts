import { F16_DIRECTIVES, FRAGMENT } from './webgpu-matmul-f16-program.ts';

/**
 * Runs the f16 matmul's WGSL where Dawn offers no subgroup matrices (lavapipe in CI): every subgroup-matrix type,
 * load, store and multiply-accumulate is replaced by a per-invocation stand-in holding the whole 16×16 matrix, with
 * the builtins' semantics (element (r, c) at `offset + r·stride + c`, or `offset + c·stride + r` column-major; f32
 * accumulation of f16 products). Every invocation of a subgroup computes the same matrices and stores the same
 * values, so the program's staging (stored layouts, padding, vec4 reads, double buffering, bounds, split-K, scaling)
 * and its epilogue run as written, only slower: a parity test of everything but the tensor cores themselves.
 */
export function emulateSubgroupMatrices(code: string): string {
  const F = FRAGMENT;
  const types: Array<[string, string, string]> = [
    ['left', 'SgLeft', 'f16'],
    ['right', 'SgRight', 'f16'],
    ['result', 'SgResult', 'f32'],
  ];
  let out = code;
  for (const d of F16_DIRECTIVES.slice(1)) out = out.split(d).join('');
  for (const [kind, name, scalar] of types)
    out = out.split(`subgroup_matrix_${kind}<${scalar}, ${F}, ${F}>`).join(name);
  // subgroupMatrixLoad<SgLeft>(&As, … → sgLoad_SgLeft_As(…
  out = out.replace(/subgroupMatrixLoad<(\w+)>\(&(\w+), /g, 'sgLoad_$1_$2(');
  out = out.replace(/subgroupMatrixStore\(&(\w+), /g, 'sgStore_$1(');
  out = out.split('subgroupMatrixMultiplyAccumulate(').join('sgMultiplyAccumulate(');
  const loads = [...new Set([...out.matchAll(/sgLoad_(\w+?)_(\w+)\(/g)].map((m) => `${m[1]}|${m[2]}`))];
  const stores = [...new Set([...out.matchAll(/sgStore_(\w+)\(/g)].map((m) => m[1]!))];
  const defs = [
    ...types.map(([, name, scalar]) => `struct ${name} { v : array<${scalar}, ${F * F}> }`),
    ...loads.map((key) => {
      const [type, array] = key.split('|');
      return `fn sgLoad_${type}_${array}(offset : u32, colMajor : bool, stride : u32) -> ${type} {
        var m : ${type};
        for (var r = 0u; r < ${F}u; r++) { for (var c = 0u; c < ${F}u; c++) {
          m.v[r * ${F}u + c] = ${array}[select(offset + r * stride + c, offset + c * stride + r, colMajor)];
        } }
        return m;
      }`;
    }),
    ...stores.map(
      (array) => `fn sgStore_${array}(offset : u32, m : SgResult, colMajor : bool, stride : u32) {
        for (var r = 0u; r < ${F}u; r++) { for (var c = 0u; c < ${F}u; c++) {
          ${array}[select(offset + r * stride + c, offset + c * stride + r, colMajor)] = m.v[r * ${F}u + c];
        } }
      }`,
    ),
    `fn sgMultiplyAccumulate(a : SgLeft, b : SgRight, acc : SgResult) -> SgResult {
      var m = acc;
      for (var r = 0u; r < ${F}u; r++) { for (var c = 0u; c < ${F}u; c++) {
        var s = m.v[r * ${F}u + c];
        for (var k = 0u; k < ${F}u; k++) { s += f32(a.v[r * ${F}u + k]) * f32(b.v[k * ${F}u + c]); }
        m.v[r * ${F}u + c] = s;
      } }
      return m;
    }`,
  ];
  return `${out}\n${defs.join('\n')}\n`;
}
