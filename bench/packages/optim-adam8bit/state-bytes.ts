/**
 * 8-bit Adam optimizer-state bytes on the gpt2-124m parameter shapes, predicted by `stateBytes()` and MEASURED by
 * creating the state of every parameter (cpu backend, one parameter at a time) and summing the bytes of its unique
 * buffers (int32 code words + float32 absmax, or float32 m and v). AdamW: 8 B per element. Two settings: the
 * bitsandbytes default (every tensor ≥ 4096 elements 8-bit, the tied embedding included) and `float32Embeddings`
 * (HF Trainer's rule: the embedding keeps float32 state).
 *
 *   node --conditions=@kstar/source --import tsx bench/packages/optim-adam8bit/state-bytes.ts
 *
 * Writes bench/packages/optim-adam8bit/results/state-bytes-gpt2-124m.json and prints a Markdown table.
 */
import { adam8bit } from '@kstar/optim-adam8bit';
import * as tf from '@tensorflow/tfjs';
import { measureStateBytes, paramCount, writeStateBytesResult } from '../state-bytes.ts';

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const params = paramCount();
  const adamw = 8 * params;
  const settings: Record<string, unknown>[] = [];
  for (const [label, options] of [
    ['bitsandbytes default (8-bit for every tensor ≥ 4096 elements)', {}],
    ['float32Embeddings: true (wte, wpe keep float32 state)', { float32Embeddings: true }],
  ] as const) {
    const { predicted, measured } = measureStateBytes(adam8bit(options));
    settings.push({
      label,
      options,
      predictedBytes: predicted,
      measuredBytes: measured,
      bytesPerParam: measured / params,
      fractionOfAdamW: measured / adamw,
    });
  }
  const result = {
    model: 'gpt2-124m',
    params,
    adamwStateBytes: adamw,
    blockSize: 256,
    minQuantizedSize: 4096,
    settings,
    largeTensorBytesPerParam: 2 + 8 / 256,
  };
  writeStateBytesResult(import.meta.url, result);
  console.log(`| setting | state bytes (measured = predicted) | B/param | vs AdamW ${adamw} |`);
  console.log('| --- | --- | --- | --- |');
  for (const s of settings as {
    label: string;
    measuredBytes: number;
    predictedBytes: number;
    bytesPerParam: number;
    fractionOfAdamW: number;
  }[]) {
    console.log(
      `| ${s.label} | ${s.measuredBytes}${s.measuredBytes === s.predictedBytes ? '' : ` (predicted ${s.predictedBytes})`} | ${s.bytesPerParam.toFixed(3)} | ${(100 * s.fractionOfAdamW).toFixed(1)}% |`,
    );
  }
}

await main();
