#!/usr/bin/env node
// Merges `pnpm bench gpu` JSONs of alternating rounds into one file with a median per variant:
//   node scripts/gpu-rounds-summary.mjs OUT.json VARIANT=a.json,b.json [VARIANT=…] [--clocks clocks.csv]
// Each run's figure is its median step (steps after the first two, `tokensPerSecondMedian`); a variant's is the
// median over its runs. `--clocks` adds the SM clocks `nvidia-smi -l 1` logged during the call (how many samples at
// each clock). Used by scripts/gpu-run-webgpu-speed.sh's results (see its header).
import { readFileSync, writeFileSync } from 'node:fs';

const [out, ...args] = process.argv.slice(2);
if (!out || args.length === 0) {
  console.error(
    'usage: node scripts/gpu-rounds-summary.mjs OUT.json VARIANT=a.json,b.json … [--clocks FILE]',
  );
  process.exit(2);
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const variants = [];
let clocks = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--clocks') {
    const counts = {};
    for (const line of readFileSync(args[++i], 'utf8').split('\n').slice(1)) {
      const mhz = line.split(', ')[1];
      if (mhz) counts[mhz] = (counts[mhz] ?? 0) + 1;
    }
    clocks = counts;
    continue;
  }
  const [name, list] = args[i].split('=');
  if (!list) throw new Error(`'${args[i]}' is not VARIANT=file,file: name each variant's JSON files`);
  const runs = list.split(',').map((file) => {
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    const row = doc.rows[0];
    if (!row) throw new Error(`${file} has no rows: the run failed (see its log)`);
    return {
      file: file.split('/').at(-1),
      config: row.name,
      tokensPerSecondMedian: row.tokensPerSecondMedian,
      tokensPerSecondSteady: row.tokensPerSecondSteady,
      stepSeconds: row.stepSeconds,
      peakGpuBytesInUse: row.peakGpuBytesInUse,
      losses: row.losses,
      machine: doc.machine,
    };
  });
  const v = runs.map((r) => r.tokensPerSecondMedian);
  variants.push({ name, tokensPerSecondMedian: median(v), min: Math.min(...v), max: Math.max(...v), runs });
}
writeFileSync(
  out,
  `${JSON.stringify({ kind: 'gpu-rounds', date: new Date().toISOString(), clocks, variants }, null, 2)}\n`,
);
for (const v of variants)
  console.log(
    `${v.name.padEnd(20)} median ${Math.round(v.tokensPerSecondMedian)} tokens/s (${Math.round(v.min)}–${Math.round(v.max)}, ${v.runs.length} runs)`,
  );
