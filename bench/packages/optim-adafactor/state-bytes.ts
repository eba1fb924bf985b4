/**
 * Adafactor optimizer-state bytes on the gpt2-124m parameter shapes: predicted by `stateBytes()` and MEASURED by
 * creating the state for every parameter (unique buffers × numel × 4), against AdamW's 8 bytes per parameter.
 * Run from the repo root:
 *   node --conditions=@kstar/source --import tsx bench/packages/optim-adafactor/state-bytes.ts
 * Writes bench/packages/optim-adafactor/results/state-bytes-gpt2-124m.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { adafactor } from '@kstar/optim-adafactor';
import * as tf from '@tensorflow/tfjs';

const d = 768;
const shapes: [string, number[]][] = [
  ['wte', [50257, d]],
  ['wpe', [1024, d]],
];
for (let l = 0; l < 12; l++) {
  shapes.push(
    [`h${l}.ln1.gamma`, [d]],
    [`h${l}.ln1.beta`, [d]],
    [`h${l}.attn.wqkv`, [d, 3 * d]],
    [`h${l}.attn.bqkv`, [3 * d]],
    [`h${l}.attn.wo`, [d, d]],
    [`h${l}.attn.bo`, [d]],
    [`h${l}.ln2.gamma`, [d]],
    [`h${l}.ln2.beta`, [d]],
    [`h${l}.mlp.wfc`, [d, 4 * d]],
    [`h${l}.mlp.bfc`, [4 * d]],
    [`h${l}.mlp.wproj`, [4 * d, d]],
    [`h${l}.mlp.bproj`, [d]],
  );
}
shapes.push(['lnf.gamma', [d]], ['lnf.beta', [d]]);

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

function measure(plugin: ReturnType<typeof adafactor>) {
  let predicted = 0;
  let measured = 0;
  let matrices = 0;
  let vectors = 0;
  for (const [name, shape] of shapes) {
    predicted += plugin.stateBytes(shape);
    const state = plugin.init({
      name: `bench/${name}`,
      shape,
      role: name === 'wte' ? 'embedding' : shape.length > 1 ? 'matrix' : 'vector',
    });
    const seen = new Set<object>();
    let bytes = 0;
    for (const t of Object.values(state)) {
      if (seen.has(t.dataId)) continue;
      seen.add(t.dataId);
      bytes += 4 * t.size;
    }
    measured += bytes;
    if (shape.length > 1) matrices += bytes;
    else vectors += bytes;
    tf.dispose(Object.values(state)); // one parameter at a time keeps the peak low
  }
  return { predicted, measured, matrices, vectors };
}

async function main() {
  await tf.setBackend('cpu');
  const params = shapes.reduce((a, [, s]) => a + numel(s), 0);
  const adamw = 8 * params;
  const noMomentum = measure(adafactor());
  const withMomentum = measure(adafactor({ relativeStep: false, lr: 1e-3, beta1: 0.9 }));
  const pct = (x: number) => Number(((100 * x) / adamw).toFixed(3));
  const result = {
    preset: 'gpt2-124m',
    parameters: params,
    tensors: shapes.length,
    adamwBytes: adamw,
    adafactor: { ...noMomentum, percentOfAdamW: pct(noMomentum.measured) },
    adafactorBeta1: { ...withMomentum, percentOfAdamW: pct(withMomentum.measured) },
    predictionEqualsMeasurement:
      noMomentum.predicted === noMomentum.measured && withMomentum.predicted === withMomentum.measured,
    measuredAt: new Date().toISOString(),
  };
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL('state-bytes-gpt2-124m.json', dir), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
  if (!result.predictionEqualsMeasurement) process.exitCode = 1;
}

await main();
