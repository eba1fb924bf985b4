// Run by sharding.test.ts: `node … shard-parity-ranks.ts OUT` (one process: the single-process reference, no
// sharding plugin) and `mpirun -np N node … shard-parity-ranks.ts OUT` (ZeRO over N ranks). Every (optimizer, stage)
// configuration trains tiny for 10 steps on the same global batches; rank 0 writes per-step losses, the final
// parameters (flat float32) and each rank's measured and predicted bytes under OUT.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCollective } from '@kstar/collective-mpi';
import { TrainingEngine } from '@kstar/core';
import { createTokenizer, loadCorpus, TokenDataset } from '@kstar/data';
import { createGPT, resolveConfig } from '@kstar/gpt';
import { split24 } from '@kstar/master-split24';
import { predictRankBytes, zero } from '@kstar/shard-zero';
import { gatherNumbers, rankBatch } from '@kstar/train-loop';
import * as tf from '@tensorflow/tfjs';
import { optimizerEntry } from '../src/optimizers.ts';
import { shardedLomoStep } from '../src/sharded-lomo.ts';
import { segmentPlan } from '../src/train.ts';
import { SHARD_PARITY_CONFIGS, SHARD_PARITY_RUN } from './shard-parity-configs.ts';

async function main() {
  const out = process.argv[2]!;
  await tf.setBackend('cpu');
  const collective = await openCollective();
  const N = collective.size;
  const { batch: B, seq: T, steps, seed } = SHARD_PARITY_RUN;
  const tokenizer = createTokenizer('byte');
  const tokens = tokenizer.encode(loadCorpus({ kind: 'brown' }).text.slice(0, 200_000));
  const modelConfig = resolveConfig('tiny', { vocabSize: tokenizer.vocabSize });
  // SHARD_PARITY_ONLY=adamw,lion limits the configurations (local debugging).
  const only = process.env.SHARD_PARITY_ONLY?.split(',');
  for (const cfg of SHARD_PARITY_CONFIGS.filter((c) => !only || only.includes(c.name))) {
    const stages = N === 1 ? [null] : cfg.stages;
    for (const stage of stages) {
      const entry = optimizerEntry(cfg.optimizer);
      const optimizer = entry.create(entry.defaultLr, cfg.options ?? {});
      const masterWeights = cfg.split24 ? split24() : undefined;
      const model = createGPT(modelConfig, { seed });
      const shapes = [...model.variables].map(([name, v]) => ({
        name,
        shape: v.shape,
        role: model.paramInfo(name).role,
      }));
      const plugin = stage === null ? undefined : zero({ stage, collective });
      const segments = segmentPlan(modelConfig.nLayer, 1);
      const engine = new TrainingEngine(model, {
        optimizer,
        mode: cfg.mode,
        ...(cfg.mode === 'segmented' ? { segments } : {}),
        ...(masterWeights ? { masterWeights } : {}),
        ...(plugin ? { sharding: plugin } : {}),
      });
      const shardedStep = plugin && entry.trainStep ? shardedLomoStep(engine, plugin) : undefined;
      const dataset = new TokenDataset(tokens, { seed, vocabSize: tokenizer.vocabSize, name: 'brown' });
      const losses: number[] = [];
      const tensorsPerStep: number[] = [];
      let gradPeak = 0;
      const sentBefore = collective.bytesSent();
      for (let step = 1; step <= steps; step++) {
        const global = dataset.trainBatch(B, T);
        const mine = rankBatch(global, collective.rank, N);
        const r = await (shardedStep
          ? shardedStep(mine)
          : entry.trainStep
            ? entry.trainStep(engine, mine)
            : engine.trainStep(mine));
        tf.dispose([global.inputs, global.targets, mine.inputs, mine.targets]);
        losses.push(r.loss);
        gradPeak = Math.max(gradPeak, r.gradPeakBytes);
        tensorsPerStep.push(tf.memory().numTensors);
      }
      const bytesSentPerStep = (collective.bytesSent() - sentBefore) / steps;
      const measured = [
        engine.paramBytes(),
        engine.optimizerStateBytes(),
        gradPeak,
        plugin?.attached?.gatheredPeakBytes() ?? 0,
      ];
      const perRank = await gatherNumbers(collective, measured);
      const names = [...model.variables.keys()];
      // Final parameters, whole (stage 3 gathers them; split24 materializes its stored values).
      let params: Record<string, tf.Tensor>;
      let release: () => void;
      if (engine.sharded) {
        await engine.sharded.gather(names);
        params = engine.sharded.read(names);
        release = () => engine.sharded!.release(params);
      } else if (masterWeights) {
        params = masterWeights.materialize(names);
        release = () => tf.dispose(Object.values(params));
      } else {
        params = Object.fromEntries(model.variables);
        release = () => {};
      }
      const flat = new Float32Array(names.reduce((n, k) => n + params[k]!.size, 0));
      const layout: Array<{ name: string; offset: number; size: number }> = [];
      let o = 0;
      for (const k of names) {
        layout.push({ name: k, offset: o, size: params[k]!.size });
        const d = await params[k]!.data();
        flat.set(d as Float32Array, o);
        o += d.length;
      }
      release();
      const predicted = Array.from({ length: N }, (_, rank) =>
        predictRankBytes({
          params: shapes,
          optimizer,
          masterWeights,
          stage: stage ?? 0,
          ranks: N,
          rank,
          ...(plugin?.attached ? { ownership: plugin.attached.ownership } : {}),
          segments:
            cfg.mode === 'segmented'
              ? segments.map((s) => s.flatMap((i) => model.stages[i]!.params))
              : undefined,
        }),
      );
      const id = `${cfg.name}-${stage === null ? 'single' : `zero${stage}`}-${N}`;
      if (collective.rank === 0) {
        writeFileSync(join(out, `${id}.bin`), Buffer.from(flat.buffer));
        writeFileSync(
          join(out, `${id}.json`),
          JSON.stringify({
            id,
            layout,
            config: cfg.name,
            stage,
            ranks: N,
            losses,
            tensorsPerStep,
            bytesSentPerStep,
            params: flat.length,
            measured: perRank.map(([paramBytes, optimizerStateBytes, gradPeakBytes, gatheredPeakBytes]) => ({
              paramBytes,
              optimizerStateBytes,
              gradPeakBytes,
              gatheredPeakBytes,
            })),
            predicted,
          }),
        );
      }
      engine.dispose();
      masterWeights?.dispose();
      model.dispose();
    }
  }
  await collective.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
