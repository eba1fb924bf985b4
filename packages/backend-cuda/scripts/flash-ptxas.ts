// The fused attention kernels' registers, spills and shared memory per head dim, as ptxas reports them for the H200
// (sm_90, nvcc's default optimisation: what NVRTC does at run time). No GPU needed. Usage, from the repo root:
//   node --import tsx packages/backend-cuda/scripts/flash-ptxas.ts OUT.json
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { flashSources } from '../src/kstar-flash-sources.ts';

const out = process.argv[2];
if (!out) throw new Error('usage: flash-ptxas.ts OUT.json (the JSON file to write)');
const nvcc = process.env.NVCC ?? 'nvcc';
const dir = mkdtempSync(join(tmpdir(), 'kstar-flash-ptxas-'));
const rows: Record<string, unknown>[] = [];
try {
  for (const hd of [16, 32, 64, 128]) {
    const unit = Object.entries(flashSources(hd))
      .map(([name, s]) => `namespace k_${name} {\n${s}\n}\n`)
      .join('\n');
    writeFileSync(join(dir, 'flash.cu'), unit);
    // ptxas -v reports on stderr.
    const r = spawnSync(
      nvcc,
      ['-cubin', '-arch=sm_90', '-Xptxas', '-v', '-o', join(dir, 'flash.cubin'), join(dir, 'flash.cu')],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`nvcc failed (exit ${r.status}): ${r.stderr}`);
    const err = `${r.stdout}${r.stderr}`;
    for (const block of err.split("Compiling entry function '").slice(1)) {
      const name = block.slice(0, block.indexOf("'"));
      const num = (re: RegExp) => Number(re.exec(block)?.[1] ?? 0);
      rows.push({
        kernel: name,
        headDim: hd,
        registers: num(/Used (\d+) registers/),
        spillStoreBytes: num(/(\d+) bytes spill stores/),
        spillLoadBytes: num(/(\d+) bytes spill loads/),
        sharedBytes: num(/(\d+) bytes smem/),
      });
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const version = execFileSync(nvcc, ['--version'], { encoding: 'utf8' }).trim().split('\n').pop();
writeFileSync(
  out,
  `${JSON.stringify(
    {
      kind: 'cuda-flash-ptxas',
      date: new Date().toISOString(),
      command: `node --import tsx packages/backend-cuda/scripts/flash-ptxas.ts ${out}`,
      machine: {
        cpu: cpus()[0]?.model,
        cores: cpus().length,
        platform: platform(),
        arch: arch(),
        node: process.version,
        nvcc: version,
        target: 'sm_90 (H200), compile only',
      },
      rows,
    },
    null,
    2,
  )}\n`,
);
for (const r of rows) console.log(JSON.stringify(r));
