// The cuda backend's ratios against PyTorch from one device call's results (scripts/gpu-run-cuda-full.sh):
//   node scripts/cuda-summary.mjs DIR OUT.json
// DIR holds torch.json, gpu-cuda.json, gpu-cuda-tf32.json, gpu-cuda-bf16.json (and more/gpu-cuda.json, leak.json).
// K* rows use steady tokens/s (steps after the first), PyTorch its steps after warm-up.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, out] = process.argv.slice(2);
if (!dir || !out) throw new Error('usage: node scripts/cuda-summary.mjs DIR OUT.json');
const read = (f) => (existsSync(join(dir, f)) ? JSON.parse(readFileSync(join(dir, f), 'utf8')) : null);
const torch = read('torch.json');
const torchRow = (p) => torch?.rows.find((r) => r.precision === p) ?? null;
const kstar = (file, precision, torchPrecision) =>
  (read(file)?.rows ?? []).map((r) => {
    const t = torchRow(torchPrecision);
    const tps = r.tokensPerSecondSteady ?? r.tokensPerSecond;
    return {
      name: r.name,
      precision,
      tokensPerSecond: tps,
      peakGiB: r.peakGpuBytesInUse / 2 ** 30,
      lossAtEnd: r.lossAtEnd,
      pytorch: t
        ? { precision: torchPrecision, tokensPerSecond: t.tokensPerSecond, peakGiB: t.peakGpuBytes / 2 ** 30 }
        : null,
      ratio: t ? tps / t.tokensPerSecond : null,
    };
  });
const rows = [
  ...kstar('gpu-cuda.json', 'strict', 'fp32'),
  ...kstar('gpu-cuda-tf32.json', 'tf32', 'tf32'),
  ...kstar('gpu-cuda-bf16.json', 'bf16-mixed', 'bf16'),
  ...kstar('more/gpu-cuda.json', 'strict', 'fp32'),
];
// Losses of the full-graph rows in each precision against strict float32 (same seed, same batches).
const strict = read('gpu-cuda.json')?.rows[0]?.losses ?? [];
const lossDiff = Object.fromEntries(
  ['tf32', 'bf16'].map((p) => {
    const l = read(`gpu-cuda-${p}.json`)?.rows[0]?.losses ?? [];
    const n = Math.min(l.length, strict.length);
    return [p, n ? Math.max(...l.slice(0, n).map((x, i) => Math.abs(x - strict[i]))) : null];
  }),
);
const summary = {
  kind: 'cuda-summary',
  gpu: torch?.gpu ?? null,
  torch: torch?.torch ?? null,
  rows,
  maxLossDiffVsStrict: lossDiff,
  leak: read('leak.json'),
};
writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
for (const r of rows)
  console.log(
    `${r.name.padEnd(50)} ${r.precision.padEnd(11)} ${Math.round(r.tokensPerSecond).toString().padStart(7)} tok/s ${r.peakGiB.toFixed(2).padStart(6)} GiB${r.ratio === null ? '' : `  ${r.ratio.toFixed(2)}× PyTorch ${r.pytorch.precision}`}`,
  );
console.log(
  `max |loss − strict| over the full-graph steps: tf32 ${lossDiff.tf32}, bf16-mixed ${lossDiff.bf16}`,
);
