import { encodePayload } from '@kstar/checkpoint';
import { createGPT, encodeSafetensors, resolveConfig, type SafeTensor } from '@kstar/gpt';
import { split24 } from '@kstar/master-split24';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import type { Manifest, TrainerState } from '../src/checkpoint/format.ts';
import type { LoadedCheckpoint } from '../src/checkpoint/read.ts';
import { modelShardFile } from '../src/checkpoint/sharded.ts';
import { pushSplitWords } from '../src/checkpoint/state.ts';
import { float32Weights, modelFromCheckpoint } from '../src/checkpoint/weights.ts';

const f32 = (a: Float32Array): SafeTensor['data'] => new Uint8Array(a.slice().buffer);

/** The trainer state of a step-2 checkpoint of `model` with `masterWeights` (what the weight readers look at). */
const trainerState = (model: TrainerState['model'], masterWeights: string): TrainerState => ({
  step: 2,
  samplerState: 0,
  schedule: { peakLr: 1e-3, warmup: 0, totalSteps: 2 },
  config: { masterWeights },
  model,
  losses: [],
});

describe('a ZeRO-3 checkpoint read by one process (export, sample)', () => {
  it('joins every rank’s shards into the whole model: row ranges in rank order, whole tensors from their owner', async () => {
    await tf.setBackend('cpu');
    const config = resolveConfig('tiny', { vocabSize: 64 });
    const source = createGPT(config, { seed: 3 });
    const want = await float32Weights(source);
    const shapes = new Map([...source.variables].map(([name, v]) => [name, [...v.shape]]));
    source.dispose();
    // Three ranks, as shard-zero cuts them: every other parameter by rows (⌈rows/3⌉ per rank, the last rank fewer or
    // none), the others whole at rank (i mod 3).
    const ranks = 3;
    const entries: Array<Array<[string, SafeTensor]>> = [[], [], []];
    [...want].forEach(([name, values], i) => {
      const shape = shapes.get(name)!;
      if (i % 2 === 1 || shape.length === 0) {
        entries[i % ranks]!.push([name, { dtype: 'F32', shape, data: f32(values) }]);
        return;
      }
      const rows = shape[0]!;
      const rowElems = values.length / rows;
      const per = Math.ceil(rows / ranks);
      for (let r = 0; r < ranks; r++) {
        const n = Math.max(0, Math.min(per, rows - r * per));
        if (n === 0) continue;
        const piece = values.subarray(r * per * rowElems, (r * per + n) * rowElems);
        entries[r]!.push([name, { dtype: 'F32', shape: [n, ...shape.slice(1)], data: f32(piece) }]);
      }
    });
    const files = new Map(
      entries.map((e, r) => [modelShardFile(r), encodeSafetensors(e, { format: 'float32-shards' })]),
    );
    const checkpoint = (only: Map<string, Uint8Array>): LoadedCheckpoint => ({
      dir: 'step-00000002',
      manifest: { world: { size: ranks } } as Manifest,
      trainer: trainerState(config, 'fp32'),
      files: only,
    });
    const model = await modelFromCheckpoint(checkpoint(files));
    const got = await float32Weights(model);
    model.dispose();
    expect([...got.keys()]).toEqual([...want.keys()]);
    for (const [name, values] of want) expect(got.get(name), name).toEqual(values);
    // A rank's file missing: one clear error, naming it.
    files.delete(modelShardFile(1));
    await expect(modelFromCheckpoint(checkpoint(files))).rejects.toThrow(/model\.rank1\.safetensors/);
  });

  it('split24 shards (each rank’s rows packed on their own) join into the 24-bit weights split24 keeps of the whole tensor', async () => {
    await tf.setBackend('cpu');
    const config = resolveConfig('tiny', { vocabSize: 64, nLayer: 1, nEmbd: 32, blockSize: 16 });
    const source = createGPT(config, { seed: 4 });
    const float32 = await float32Weights(source);
    const shapes = new Map([...source.variables].map(([name, v]) => [name, [...v.shape]]));
    // Reference: split24 of each whole tensor, reconstructed (24 bits: below float32, above bf16).
    const whole = split24({ impl: 'fallback' });
    whole.adopt(source.variables);
    const want = new Map<string, Float32Array>();
    for (const name of whole.names()) {
      const t = whole.reconstruct(name);
      want.set(name, Float32Array.from((await t.data()) as Float32Array));
      t.dispose();
    }
    whole.dispose();
    // Two ranks by rows (⌈rows/2⌉ each); a rank packs its float32 rows on its own, as a ZeRO-3 rank's split24 does.
    const files = new Map<string, Uint8Array>();
    for (let r = 0; r < 2; r++) {
      const shards = new Map<string, tf.Variable>();
      for (const [name, values] of float32) {
        const shape = shapes.get(name)!;
        const rows = shape[0]!;
        const per = Math.ceil(rows / 2);
        const n = Math.max(0, Math.min(per, rows - r * per));
        if (n === 0) continue;
        const rowElems = values.length / rows;
        const piece = values.slice(r * per * rowElems, (r * per + n) * rowElems);
        shards.set(name, tf.variable(tf.tensor(piece, [n, ...shape.slice(1)])));
      }
      const rank = split24({ impl: 'fallback' });
      rank.adopt(shards);
      const entries: Array<[string, SafeTensor]> = [];
      const held = pushSplitWords(entries, await rank.getState());
      rank.dispose();
      const metadata = { format: 'split24-shards', shapes: JSON.stringify(held) };
      files.set(modelShardFile(r), encodePayload(entries, metadata));
    }
    const model = await modelFromCheckpoint({
      dir: 'step-00000002',
      manifest: { world: { size: 2 } } as Manifest,
      trainer: trainerState(config, 'split24'),
      files,
    });
    const got = await float32Weights(model);
    model.dispose();
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, values] of want) expect(got.get(name), name).toEqual(values);
    // 24 bits, not a bf16 expansion: most weights carry bits below the bf16 half.
    const wte = new Uint32Array(got.get('wte')!.buffer);
    expect(wte.filter((w) => (w & 0xffff) !== 0).length).toBeGreaterThan(wte.length / 2);
  });
});
