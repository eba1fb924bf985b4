/**
 * CAME optimizer-state bytes for the gpt2-124m preset, predicted by `stateBytes()` AND measured by creating the
 * state (`came().init`) for every parameter shape and summing the unique buffers behind it, against AdamW's
 * 8 bytes per parameter. Writes bench/packages/optim-came/results/state-bytes-gpt2-124m.json.
 *
 *   node --conditions=@kstar/source --import tsx bench/packages/optim-came/state-bytes.ts
 */
import { came } from '@kstar/optim-came';
import * as tf from '@tensorflow/tfjs';
import { measureStateBytes, numel, writeStateBytesResult } from '../state-bytes.ts';

/** The row a parameter is reported in: the 12 blocks together, a LayerNorm's gamma and beta together. */
const rowName = (name: string) =>
  name.replace(/^h\d+\./, '').replace(/^(ln\w+)\.(gamma|beta)$/, '$1.gamma / $1.beta');

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
  const plugin = came({ lr: 1e-3 });
  const groups = new Map<
    string,
    { shape: number[]; count: number; each: number; keys: Record<string, number[]> }
  >();
  let params = 0;
  const { predicted, measured } = measureStateBytes(plugin, undefined, (spec, bytes, state) => {
    if (bytes.measured !== bytes.predicted) {
      throw new Error(
        `${spec.name} [${spec.shape}]: stateBytes() predicts ${bytes.predicted} B, measured ${bytes.measured} B`,
      );
    }
    params += numel(spec.shape);
    const name = rowName(spec.name);
    const g = groups.get(name) ?? { shape: [...spec.shape], count: 0, each: bytes.measured, keys: {} };
    g.count += 1;
    g.keys = Object.fromEntries(Object.entries(state).map(([k, t]) => [k, t.shape]));
    groups.set(name, g);
  });
  const rows = [...groups.entries()].map(([name, g]) => ({
    name,
    shape: g.shape,
    count: g.count,
    paramsEach: numel(g.shape),
    cameBytesEach: g.each,
    cameBytes: g.each * g.count,
    adamwBytes: 8 * numel(g.shape) * g.count,
    stateShapes: g.keys,
  }));
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
  const out = writeStateBytesResult(import.meta.url, result);
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
