// Run by shard-webgpu.test.ts as `mpirun -np 2 node … shard-webgpu-ranks.ts webgpu OUT`: ZeRO stages 0, 2 and 3 over
// 2 WebGPU ranks, whose tensors reach MPI through host memory in buckets. A two-segment MLP (few shaders, so WebGPU's
// pipeline compilation stays short on lavapipe) trains 3 steps with AdamW; rank 0 writes per-step losses, the final
// parameters and the MPI calls per step to OUT/runs.json. The test runs the single-process reference (`trainRuns`).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCollective } from '@kstar/collective-mpi';
import { type Batch, type Collective, type StagedModel, TrainingEngine, type ZeroStage } from '@kstar/core';
import { selectBackend, shutdownWebGPU } from '@kstar/kernels';
import { zero } from '@kstar/shard-zero';
import { rankBatch } from '@kstar/train-loop';
import * as tf from '@tensorflow/tfjs';
import { optimizerEntry } from '../src/optimizers.ts';

const GLOBAL_BATCH = 4;
const IN = 8;
const HIDDEN = 16;
const OUT = 4;
const STEPS = 3;

/** A seeded uniform sequence in [-1, 1) (the same on every rank and backend). */
function seeded(seed: number, n: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = (2 * s) / 2147483648 - 1;
  }
  return out;
}

/** x [B, IN] → tanh(x·w1 + b1) [B, HIDDEN] (segment 0) → mean((h·w2 + b2 − y)²) (segment 1). */
function mlp(): StagedModel {
  const variables = new Map<string, tf.Variable>([
    ['w1', tf.variable(tf.tensor(seeded(1, IN * HIDDEN), [IN, HIDDEN]), true, 'mlp/w1')],
    ['b1', tf.variable(tf.tensor(seeded(2, HIDDEN), [HIDDEN]), true, 'mlp/b1')],
    ['w2', tf.variable(tf.tensor(seeded(3, HIDDEN * OUT), [HIDDEN, OUT]), true, 'mlp/w2')],
    ['b2', tf.variable(tf.tensor(seeded(4, OUT), [OUT]), true, 'mlp/b2')],
  ]);
  return {
    variables,
    paramInfo: (name) => ({
      name,
      shape: variables.get(name)!.shape,
      role: name.startsWith('w') ? 'matrix' : 'vector',
    }),
    stages: [
      {
        name: 'hidden',
        params: ['w1', 'b1'],
        forward: (x, p) => tf.tanh(tf.add(tf.matMul(x as tf.Tensor2D, p.w1 as tf.Tensor2D), p.b1!)),
      },
      {
        name: 'loss',
        params: ['w2', 'b2'],
        forward: (h, p, batch) =>
          tf.mean(
            tf.square(tf.sub(tf.add(tf.matMul(h as tf.Tensor2D, p.w2 as tf.Tensor2D), p.b2!), batch.targets)),
          ),
      },
    ],
  };
}

/** Step s's global batch: float32 inputs [B, IN] and targets [B, OUT]. */
function globalBatch(step: number): Batch {
  return {
    inputs: tf.tensor(seeded(100 + step, GLOBAL_BATCH * IN), [GLOBAL_BATCH, IN]),
    targets: tf.tensor(seeded(200 + step, GLOBAL_BATCH * OUT), [GLOBAL_BATCH, OUT]),
  };
}

export interface WebGpuRankRun {
  id: string;
  backend: string;
  losses: number[];
  params: number[];
  callsPerStep: number;
  bytesSentPerStep: number;
}

/** Trains the MLP once per stage (null: no sharding plugin) over `collective`; returns each run's record. */
export async function trainRuns(
  collective: Collective,
  stages: readonly (ZeroStage | null)[],
): Promise<WebGpuRankRun[]> {
  const N = collective.size;
  const calls = () => ('calls' in collective ? (collective as { calls(): number }).calls() : 0);
  const runs: WebGpuRankRun[] = [];
  for (const stage of stages) {
    const model = mlp();
    const entry = optimizerEntry('adamw');
    const plugin = stage === null ? undefined : zero({ stage, collective });
    const engine = new TrainingEngine(model, {
      optimizer: entry.create(0.05, {}),
      mode: 'segmented',
      segments: [[0], [1]],
      ...(plugin ? { sharding: plugin } : {}),
    });
    const losses: number[] = [];
    const callsBefore = calls();
    const sentBefore = collective.bytesSent();
    for (let step = 1; step <= STEPS; step++) {
      const global = globalBatch(step);
      const mine = rankBatch(global, collective.rank, N);
      losses.push((await engine.trainStep(mine)).loss);
      tf.dispose([global.inputs, global.targets, mine.inputs, mine.targets]);
    }
    const callsPerStep = (calls() - callsBefore) / STEPS;
    const bytesSentPerStep = (collective.bytesSent() - sentBefore) / STEPS;
    const names = [...model.variables.keys()];
    let params: Record<string, tf.Tensor> = Object.fromEntries(model.variables);
    if (engine.sharded) {
      await engine.sharded.gather(names);
      params = engine.sharded.read(names);
    }
    const flat: number[] = [];
    for (const n of names) flat.push(...(await params[n]!.data()));
    engine.sharded?.release(params);
    const id = stage === null ? 'single' : `zero${stage}-${N}`;
    runs.push({ id, backend: tf.getBackend(), losses, params: flat, callsPerStep, bytesSentPerStep });
    engine.dispose();
    for (const v of model.variables.values()) if (!v.isDisposed) v.dispose();
  }
  return runs;
}

async function main() {
  const [backend, out] = process.argv.slice(2) as ['cpu' | 'webgpu', string];
  await selectBackend(backend);
  const collective = await openCollective();
  const runs = await trainRuns(collective, collective.size === 1 ? [null] : [0, 2, 3]);
  if (collective.rank === 0) writeFileSync(join(out, 'runs.json'), JSON.stringify(runs));
  await collective.close();
  if (backend === 'webgpu') shutdownWebGPU();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
