/**
 * CAME optimizer-state bytes for the gpt2-124m preset, predicted by `stateBytes()` AND measured by creating the
 * state (`came().init`) for every parameter shape and summing the unique buffers behind it, against AdamW's
 * 8 bytes per parameter. Writes bench/packages/optim-came/results/state-bytes-gpt2-124m.json.
 *
 *   node --conditions=@kstar/source --import tsx bench/packages/optim-came/state-bytes.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { uniqueBufferBytes } from '@kstar/core';
import { came } from '@kstar/optim-came';
import * as tf from '@tensorflow/tfjs';

const D = 768;
const LAYERS = 12;
/** gpt2-124m parameter shapes: [name, shape, count]. */
const PARAMS: [string, number[], number][] = [
  ['wte', [50257, D], 1],
  ['wpe', [1024, D], 1],
  ['ln1.gamma / ln1.beta', [D], 2 * LAYERS],
  ['attn.wqkv', [D, 3 * D], LAYERS],
  ['attn.bqkv', [3 * D], LAYERS],
  ['attn.wo', [D, D], LAYERS],
  ['attn.bo', [D], LAYERS],
  ['ln2.gamma / ln2.beta', [D], 2 * LAYERS],
  ['mlp.wfc', [D, 4 * D], LAYERS],
  ['mlp.bfc', [4 * D], LAYERS],
  ['mlp.wproj', [4 * D, D], LAYERS],
  ['mlp.bproj', [D], LAYERS],
  ['lnf.gamma / lnf.beta', [D], 2],
];

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
  const plugin = came({ lr: 1e-3 });
  const rows = [];
  let params = 0;
  let predicted = 0;
  let measured = 0;
  for (const [name, shape, count] of PARAMS) {
    const numel = shape.reduce((a, b) => a * b, 1);
    const role = shape.length === 1 ? 'vector' : name === 'wte' ? 'embedding' : 'matrix';
    const perPredicted = plugin.stateBytes(shape, role);
    // Measured: create the state of one such parameter (identical for every copy), count its unique buffers.
    const state = plugin.init({ name: `bench/${name}`, shape, role });
    const perMeasured = uniqueBufferBytes(Object.values(state));
    const keys = Object.fromEntries(Object.entries(state).map(([k, t]) => [k, t.shape]));
    tf.dispose(Object.values(state));
    if (perMeasured !== perPredicted) {
      throw new Error(
        `${name} [${shape}]: stateBytes() predicts ${perPredicted} B, measured ${perMeasured} B`,
      );
    }
    params += numel * count;
    predicted += perPredicted * count;
    measured += perMeasured * count;
    rows.push({
      name,
      shape,
      count,
      paramsEach: numel,
      cameBytesEach: perMeasured,
      cameBytes: perMeasured * count,
      adamwBytes: 8 * numel * count,
      stateShapes: keys,
    });
  }
  const adamw = 8 * params;
  const result = {
    preset: 'gpt2-124m',
    optimizer: 'came',
    params,
    adamwBytes: adamw,
    cameBytesPredicted: predicted,
    cameBytesMeasured: measured,
    ratioToAdamW: measured / adamw,
    bytesPerParam: measured / params,
    rows,
    measuredWith: `tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}, unique buffers of came().init state`,
    date: new Date().toISOString(),
  };
  if (params !== 124_439_808) throw new Error(`parameter count ${params}, expected 124,439,808`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const out = new URL('./results/state-bytes-gpt2-124m.json', import.meta.url);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(22)} [${r.shape}] ×${r.count}: CAME ${mib(r.cameBytes)} MiB, AdamW ${mib(r.adamwBytes)} MiB`,
    );
  }
  console.log(
    `total: CAME ${mib(measured)} MiB (predicted ${mib(predicted)}), AdamW ${mib(adamw)} MiB, ratio ${(100 * result.ratioToAdamW).toFixed(2)}%`,
  );
  console.log(`wrote ${out.pathname}`);
}

await main();
