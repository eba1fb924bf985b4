/**
 * Lion optimizer-state bytes on the gpt2-124m parameter shapes, predicted by `stateBytes()` and MEASURED by
 * creating the state of every parameter (cpu backend, one parameter at a time) and summing the bytes of its
 * unique buffers; AdamW's figure is 8 B per element (two float32 moments).
 *
 *   node --conditions=@kstar/source --import tsx bench/packages/optim-lion/state-bytes.ts
 *
 * Writes bench/packages/optim-lion/results/state-bytes-gpt2-124m.json and prints a Markdown table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { lion } from '@kstar/optim-lion';
import * as tf from '@tensorflow/tfjs';

const D = 768;
const VOCAB = 50257;
const CTX = 1024;
const LAYERS = 12;

/** gpt2-124m parameters: [name, shape], as the GPT package lays them out. */
function gpt2Shapes(): [string, number[]][] {
  const out: [string, number[]][] = [
    ['wte', [VOCAB, D]],
    ['wpe', [CTX, D]],
  ];
  for (let l = 0; l < LAYERS; l++) {
    const h = `h${l}`;
    out.push(
      [`${h}.ln1.gamma`, [D]],
      [`${h}.ln1.beta`, [D]],
      [`${h}.attn.wqkv`, [D, 3 * D]],
      [`${h}.attn.bqkv`, [3 * D]],
      [`${h}.attn.wo`, [D, D]],
      [`${h}.attn.bo`, [D]],
      [`${h}.ln2.gamma`, [D]],
      [`${h}.ln2.beta`, [D]],
      [`${h}.mlp.wfc`, [D, 4 * D]],
      [`${h}.mlp.bfc`, [4 * D]],
      [`${h}.mlp.wproj`, [4 * D, D]],
      [`${h}.mlp.bproj`, [D]],
    );
  }
  out.push(['lnf.gamma', [D]], ['lnf.beta', [D]]);
  return out;
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function uniqueBytes(tensors: tf.Tensor[]): number {
  const seen = new Set<object>();
  let bytes = 0;
  for (const t of tensors) {
    if (seen.has(t.dataId)) continue;
    seen.add(t.dataId);
    bytes += t.size * 4;
  }
  return bytes;
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const plugin = lion({ lr: 1e-3, weightDecay: 0.1 });
  /** Rows grouped by kind (the 12 blocks summed). */
  const groups = new Map<string, { shape: number[]; count: number; predicted: number; measured: number }>();
  let params = 0;
  let predicted = 0;
  let measured = 0;
  for (const [name, shape] of gpt2Shapes()) {
    const role = name === 'wte' || name === 'wpe' ? 'embedding' : shape.length === 1 ? 'vector' : 'matrix';
    const p = plugin.stateBytes(shape, role);
    const state = plugin.init({ name: `gpt2/${name}`, shape, role });
    const m = uniqueBytes(Object.values(state));
    tf.dispose(Object.values(state));
    params += numel(shape);
    predicted += p;
    measured += m;
    const key = name.replace(/^h\d+\./, 'h*.');
    const g = groups.get(key) ?? { shape, count: 0, predicted: 0, measured: 0 };
    g.count += 1;
    g.predicted += p;
    g.measured += m;
    groups.set(key, g);
  }
  const adamw = 8 * params;
  const rows = [...groups.entries()].map(([name, g]) => ({
    name,
    shape: g.shape,
    count: g.count,
    lionPredictedBytes: g.predicted,
    lionMeasuredBytes: g.measured,
    adamwBytes: 8 * numel(g.shape) * g.count,
  }));
  const result = {
    preset: 'gpt2-124m',
    params,
    lionPredictedBytes: predicted,
    lionMeasuredBytes: measured,
    adamwBytes: adamw,
    lionOverAdamw: measured / adamw,
    measuredEqualsPredicted: measured === predicted,
    rows,
    measuredWith: `tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}, unique float32 buffers of lion().init per parameter`,
  };
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL('state-bytes-gpt2-124m.json', dir), `${JSON.stringify(result, null, 2)}\n`);
  const mib = (b: number) => (b / 2 ** 20).toFixed(2);
  console.log('| parameter | shape | × | Lion measured (MiB) | AdamW (MiB) |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(
      `| ${r.name} | [${r.shape}] | ${r.count} | ${mib(r.lionMeasuredBytes)} | ${mib(r.adamwBytes)} |`,
    );
  }
  console.log(
    `| **total** | ${params.toLocaleString('en-US')} params | | **${mib(measured)}** (${measured.toLocaleString('en-US')} B) | **${mib(adamw)}** (${adamw.toLocaleString('en-US')} B) |`,
  );
  console.log(
    `Lion / AdamW = ${(measured / adamw).toFixed(4)}; measured ${measured === predicted ? '=' : '≠'} predicted`,
  );
  if (measured !== predicted) process.exitCode = 1;
}

await main();
