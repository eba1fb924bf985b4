/**
 * Lion optimizer-state bytes on the gpt2-124m parameter shapes, predicted by `stateBytes()` and MEASURED by
 * creating the state of every parameter (cpu backend, one parameter at a time) and summing the bytes of its
 * unique buffers; AdamW's figure is 8 B per element (two float32 moments).
 *
 *   node --conditions=@kstar/source --import tsx bench/packages/optim-lion/state-bytes.ts
 *
 * Writes bench/packages/optim-lion/results/state-bytes-gpt2-124m.json and prints a Markdown table.
 */
import { lion } from '@kstar/optim-lion';
import * as tf from '@tensorflow/tfjs';
import { measureStateBytes, numel, writeStateBytesResult } from '../state-bytes.ts';

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const plugin = lion({ lr: 1e-3, weightDecay: 0.1 });
  /** Rows grouped by kind (the 12 blocks summed). */
  const groups = new Map<string, { shape: number[]; count: number; predicted: number; measured: number }>();
  let params = 0;
  const { predicted, measured } = measureStateBytes(plugin, undefined, (spec, bytes) => {
    params += numel(spec.shape);
    const key = spec.name.replace(/^h\d+\./, 'h*.');
    const g = groups.get(key) ?? { shape: [...spec.shape], count: 0, predicted: 0, measured: 0 };
    g.count += 1;
    g.predicted += bytes.predicted;
    g.measured += bytes.measured;
    groups.set(key, g);
  });
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
  writeStateBytesResult(import.meta.url, result);
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
