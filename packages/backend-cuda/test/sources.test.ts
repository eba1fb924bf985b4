import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as kernels from '@kstar/kernels';
import { describe, expect, it } from 'vitest';
import { CUDA_KERNEL_NAMES, cudaKernelSources } from '../src/kernels.ts';
import { kstarParityCases } from '../src/kstar-parity.ts';
import { elementwiseSource } from '../src/sources.ts';

function findNvcc(): string | null {
  for (const p of [process.env.NVCC, '/usr/local/cuda/bin/nvcc']) if (p && existsSync(p)) return p;
  const r = spawnSync('nvcc', ['--version']);
  return r.status === 0 ? 'nvcc' : null;
}

/** The optimizer plugins' kernels (plugins do not import each other, so @kstar/kernels does not define them). */
const PLUGIN_KERNELS = [
  'KstarLion',
  'KstarAdam8bit',
  'KstarLazyAdagrad',
  'KstarAdafactor',
  'KstarAdaLomo',
  'KstarLomo',
  'KstarCameFactored',
  'KstarCameVector',
];

describe('generated CUDA sources', () => {
  it('one extern "C" kernel per source, named as asked, with the expression and broadcast modes', () => {
    const src = elementwiseSource('ew_Add_ff_f', ['float', 'float'], 'float', 'a + b');
    expect(src.match(/extern "C" __global__ void (\w+)/g)).toEqual([
      'extern "C" __global__ void ew_Add_ff_f',
    ]);
    expect(src).toContain('out[i] = (float)(a + b);');
    expect(src).toContain('if (modes & 10)'); // two inputs: the strided bits of both
    expect(() => elementwiseSource('x', [], 'float', 'a')).toThrow(/1 to 3 inputs/);
  });

  it('covers the kernels the GPT needs', () => {
    for (const k of [
      'BatchMatMul',
      '_FusedMatMul',
      'GatherV2',
      'UnsortedSegmentSum',
      'Softmax',
      'Sum',
      'Transpose',
      'Select',
    ])
      expect(CUDA_KERNEL_NAMES).toContain(k);
  });

  it("registers K*'s fused kernels under @kstar/kernels' names, each with a parity case", () => {
    const defined = new Set(
      Object.values(kernels)
        .filter(
          (k): k is kernels.KstarKernel<unknown, unknown> =>
            typeof k === 'object' && k != null && 'which' in k,
        )
        .map((k) => k.name),
    );
    for (const name of PLUGIN_KERNELS) defined.add(name);
    const native = CUDA_KERNEL_NAMES.filter((n) => n.startsWith('Kstar'));
    for (const name of [
      'KstarLayerNorm',
      'KstarLayerNormGrad',
      'KstarCausalSoftmax',
      'KstarCausalSoftmaxGrad',
      'KstarCrossEntropy',
      'KstarCrossEntropyGrad',
      'KstarAdamW',
      'KstarQuantize8',
      'KstarDequantize8',
      'KstarPack',
      'KstarUnpack',
      ...PLUGIN_KERNELS,
    ])
      expect(native).toContain(name);
    for (const name of native) expect(defined, `${name} is not a @kstar/kernels kernel`).toContain(name);
    const covered = new Set(kstarParityCases().map((c) => c.kernel));
    for (const name of native.filter((n) => !n.startsWith('KstarGelu')))
      expect(covered, `${name} has no parity case`).toContain(name);
  });

  const nvcc = findNvcc();
  it.skipIf(!nvcc)('every source compiles with nvcc (one call, -ptx)', () => {
    const sources = cudaKernelSources();
    // Each source in its own namespace: their helpers repeat; the extern "C" kernel names are unique.
    const unit = Object.entries(sources)
      .map(([name, s]) => `namespace k_${name} {\n${s}\n}\n`)
      .join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'kstar-cuda-'));
    try {
      writeFileSync(join(dir, 'all.cu'), unit);
      // -Xcicc -O0: the test checks that the sources compile, not their speed (25 s optimised, 5 s not).
      execFileSync(
        nvcc!,
        ['-ptx', '-arch=sm_90', '-Xcicc', '-O0', '-o', join(dir, 'all.ptx'), join(dir, 'all.cu')],
        {
          stdio: 'pipe',
        },
      );
      const ptx = execFileSync('grep', ['-c', '^.visible .entry', join(dir, 'all.ptx')], {
        encoding: 'utf8',
      });
      expect(Number(ptx.trim())).toBe(Object.keys(sources).length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  if (!nvcc)
    console.log(
      'backend-cuda: nvcc not found (set NVCC or put it on PATH): the CUDA compile test is skipped',
    );
});
