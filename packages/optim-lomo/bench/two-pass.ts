/**
 * The cost of LOMO's global-norm clipping (two backward passes) on a small GPT-shaped toy model, cpu backend:
 * median step time of `lomoStep` without clipGradNorm (one segmented pass) and with it (norm pass + update pass).
 * Run from the repo root (a few seconds):
 *   node --conditions=@kstar/source --import tsx packages/optim-lomo/bench/two-pass.ts
 * Writes packages/optim-lomo/bench/results/two-pass-toy-cpu.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { TrainingEngine } from '@kstar/core';
import { inPlaceGradAccumulator } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { lomo, lomoStep } from '../src/index.ts';
import { disposeModel, toyBatch, toyModel } from '../test/helpers.ts';

await tf.setBackend('cpu');
const cfg = { vocab: 256, dim: 64, depth: 4, seed: 1, tied: true };
const batch = toyBatch(cfg.vocab, 4, 32, 2);
const REPS = 7;

async function time(clipGradNorm: number | null): Promise<number> {
  const model = toyModel(cfg);
  const engine = new TrainingEngine(model, {
    optimizer: lomo({ lr: 1e-3, clipGradNorm }),
    mode: 'segmented',
    gradAccumulator: inPlaceGradAccumulator,
  });
  const opts = { gradAccumulator: inPlaceGradAccumulator };
  await lomoStep(engine, batch, engine.optimizer, opts); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    await lomoStep(engine, batch, engine.optimizer, opts);
    ms.push(performance.now() - t0);
  }
  engine.ledger.detach();
  disposeModel(model);
  ms.sort((a, b) => a - b);
  return ms[Math.floor(REPS / 2)]!;
}

// Both orders, so JIT warm-up and background load do not favour one; the medians of the two runs are averaged.
const s1 = await time(null);
const t1 = await time(1.0);
const t2 = await time(1.0);
const s2 = await time(null);
const single = (s1 + s2) / 2;
const twoPass = (t1 + t2) / 2;
const result = {
  model: `toy GPT (vocab ${cfg.vocab}, dim ${cfg.dim}, depth ${cfg.depth}, tied), batch 4×32, segmented, cpu`,
  reps: REPS,
  medianMsOnePass: Number(single.toFixed(2)),
  medianMsTwoPass: Number(twoPass.toFixed(2)),
  ratio: Number((twoPass / single).toFixed(2)),
  measuredAt: new Date().toISOString(),
};
tf.dispose([batch.inputs, batch.targets]);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/two-pass-toy-cpu.json', import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
console.log(JSON.stringify(result, null, 2));
