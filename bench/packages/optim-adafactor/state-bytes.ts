/**
 * Adafactor optimizer-state bytes on the gpt2-124m parameter shapes: predicted by `stateBytes()` and MEASURED by
 * creating the state for every parameter (unique buffers × numel × 4), against AdamW's 8 bytes per parameter.
 * Run from the repo root:
 *   node --conditions=@kstar/source --import tsx bench/packages/optim-adafactor/state-bytes.ts
 * Writes bench/packages/optim-adafactor/results/state-bytes-gpt2-124m.json.
 */
import { adafactor } from '@kstar/optim-adafactor';
import * as tf from '@tensorflow/tfjs';
import { GPT2_124M, measureStateBytes, paramCount, writeStateBytesResult } from '../state-bytes.ts';

async function main() {
  await tf.setBackend('cpu');
  const params = paramCount();
  const adamw = 8 * params;
  const noMomentum = measureStateBytes(adafactor());
  const withMomentum = measureStateBytes(adafactor({ relativeStep: false, lr: 1e-3, beta1: 0.9 }));
  const pct = (x: number) => Number(((100 * x) / adamw).toFixed(3));
  const result = {
    preset: 'gpt2-124m',
    parameters: params,
    tensors: GPT2_124M.length,
    adamwBytes: adamw,
    adafactor: { ...noMomentum, percentOfAdamW: pct(noMomentum.measured) },
    adafactorBeta1: { ...withMomentum, percentOfAdamW: pct(withMomentum.measured) },
    predictionEqualsMeasurement:
      noMomentum.predicted === noMomentum.measured && withMomentum.predicted === withMomentum.measured,
    measuredAt: new Date().toISOString(),
  };
  writeStateBytesResult(import.meta.url, result);
  console.log(JSON.stringify(result, null, 2));
  if (!result.predictionEqualsMeasurement) process.exitCode = 1;
}

await main();
