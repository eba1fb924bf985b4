/**
 * LOMO / AdaLomo optimizer-state bytes on the gpt2-124m parameter shapes: predicted by `stateBytes()` and MEASURED
 * by creating the state for every parameter (unique buffers × numel × 4), against AdamW's 8 bytes per parameter.
 * Also the gradient bytes a step holds: all gradients at once (full-graph / no release) vs the largest single
 * gradient (LOMO's lower bound with gradient release; derived from the shapes, not measured).
 * Run from the repo root:
 *   node --conditions=@kstar/source --import tsx bench/packages/optim-lomo/state-bytes.ts
 * Writes bench/packages/optim-lomo/results/state-bytes-gpt2-124m.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { OptimizerPlugin } from '@kstar/core';
import { adalomo, lomo } from '@kstar/optim-lomo';
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

function measure(plugin: OptimizerPlugin) {
  let predicted = 0;
  let measured = 0;
  let matrices = 0;
  let vectors = 0;
  for (const [name, shape] of shapes) {
    predicted += plugin.stateBytes(shape);
    const state = plugin.init({
      name: `bench/${plugin.name}/${name}`,
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
    tf.dispose(Object.values(state));
  }
  return { predicted, measured, matrices, vectors };
}

await tf.setBackend('cpu');
const parameters = shapes.reduce((a, [, s]) => a + numel(s), 0);
const adamwBytes = 8 * parameters;
const l = measure(lomo());
const a = measure(adalomo());
const pct = (x: number) => Number(((100 * x) / adamwBytes).toFixed(3));
const largestGrad = Math.max(...shapes.map(([, s]) => 4 * numel(s)));
const result = {
  preset: 'gpt2-124m',
  parameters,
  tensors: shapes.length,
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
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/state-bytes-gpt2-124m.json', import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
console.log(JSON.stringify(result, null, 2));
