/**
 * LOMO / AdaLomo optimizer-state bytes on the gpt2-124m parameter shapes: predicted by `stateBytes()` and MEASURED
 * by creating the state for every parameter (unique buffers × numel × 4), against AdamW's 8 bytes per parameter.
 * Also the gradient bytes a step holds: all gradients at once (full-graph / no release) vs the largest single
 * gradient (LOMO's lower bound with gradient release; derived from the shapes, not measured).
 * Run from the repo root:
 *   node --conditions=@kstar/source --import tsx bench/packages/optim-lomo/state-bytes.ts
 * Writes bench/packages/optim-lomo/results/state-bytes-gpt2-124m.json.
 */
import { adalomo, lomo } from '@kstar/optim-lomo';
import * as tf from '@tensorflow/tfjs';
import { GPT2_124M, measureStateBytes, numel, paramCount, writeStateBytesResult } from '../state-bytes.ts';

await tf.setBackend('cpu');
const parameters = paramCount();
const adamwBytes = 8 * parameters;
const l = measureStateBytes(lomo());
const a = measureStateBytes(adalomo());
const pct = (x: number) => Number(((100 * x) / adamwBytes).toFixed(3));
const largestGrad = Math.max(...GPT2_124M.map((s) => 4 * numel(s.shape)));
const result = {
  preset: 'gpt2-124m',
  parameters,
  tensors: GPT2_124M.length,
  adamwBytes,
  lomo: { ...l, percentOfAdamW: pct(l.measured) },
  adalomo: { ...a, percentOfAdamW: pct(a.measured) },
  predictionEqualsMeasurement: l.predicted === l.measured && a.predicted === a.measured,
  gradients: {
    note: 'derived from the shapes: all gradients alive at once (full graph, no release) vs the largest single gradient (wte), the floor of a released LOMO step; a tied wte adds one more wte-sized partial gradient',
    allBytes: 4 * parameters,
    largestSingleBytes: largestGrad,
  },
  measuredAt: new Date().toISOString(),
};
writeStateBytesResult(import.meta.url, result);
console.log(JSON.stringify(result, null, 2));
