/**
 * Which MsT chunkings of issue 17's H200 run (gpt2-124m, B 8 × T 1024, WebGPU, one checkpoint segment per stage,
 * saved inputs offloaded) the byte model predicts at no more activation bytes than the run's fine chunks (mlp 8,
 * attn 64, loss 64: 1.497 GiB measured on the H200, 2026-12-03 s3). Coarser chunks recompute less: the candidates
 * for speed under the same 1.5 GiB. A prediction, not a measurement (scripts/gpu-run-offload.sh measures: on the
 * H200 mlp 2, attn 128, loss 8 had the same ledger peak and ran 2.34× faster, but WebGPU's bytes in use peaked at
 * 2.79 GiB; see @kstar/planner's README).
 * Usage (repo root): node --conditions=@kstar/source --import tsx bench/packages/planner/h200-chunks.ts --json FILE
 */
import { writeFileSync } from 'node:fs';
import { predictActivationBreakdown, resolveConfig } from '@kstar/gpt';

const json = process.argv[process.argv.indexOf('--json') + 1];
if (!process.argv.includes('--json') || !json) throw new Error('usage: h200-chunks.ts --json FILE');
const config = resolveConfig('gpt2-124m', {});
const B = 8;
const T = 1024;
const segments = Array.from({ length: config.nLayer + 2 }, (_, i) => [i]);
const predict = (mlpChunks: number, attentionChunk: number, lossChunks: number) =>
  predictActivationBreakdown(config, {
    batch: B,
    seq: T,
    mode: 'segmented',
    segments,
    backend: 'webgpu',
    savedInputBytes: 0, // offloaded to host memory
    mst: { mlpChunks, attentionChunk, lossChunks },
  }).total;
const reference = predict(8, 64, 64);
const rows = [];
for (const mlp of [1, 2, 4, 8])
  for (const attn of [64, 128, 256, 512, 1024])
    for (const loss of [8, 16, 32, 64]) {
      const bytes = predict(mlp, attn, loss);
      // Chunk calls per block and head: fewer = less recompute overhead.
      rows.push({ mlp, attn, loss, chunkCalls: mlp + T / attn + loss, predictedActivationBytes: bytes });
    }
const fits = rows
  .filter((r) => r.predictedActivationBytes <= reference)
  .sort((a, b) => a.chunkCalls - b.chunkCalls);
const result = {
  benchmark: 'h200-chunks (prediction)',
  command: 'node --conditions=@kstar/source --import tsx bench/packages/planner/h200-chunks.ts --json FILE',
  shape: {
    preset: 'gpt2-124m',
    batch: B,
    seq: T,
    backend: 'webgpu',
    segments: 'one per stage',
    savedInputs: 'offloaded',
  },
  reference: { mlp: 8, attn: 64, loss: 64, predictedActivationBytes: reference },
  coarsestAtReference: fits[0],
  rows,
};
writeFileSync(json, `${JSON.stringify(result, null, 2)}\n`);
console.log(
  `reference (8, 64, 64): ${reference} B; coarsest at no more: ${JSON.stringify(fits.slice(0, 3))}`,
);
