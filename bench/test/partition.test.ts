import { partitionedUpdate, planPartition, TrainingEngine } from '@kstar/core';
import { createGPT, resolveConfig } from '@kstar/gpt';
import { selectBackend, sliceWriter } from '@kstar/kernels';
import { adam8bit } from '@kstar/optim-adam8bit';
import { adamw } from '@kstar/optim-adamw';
import { lazyAdagrad } from '@kstar/optim-lazy-adagrad';
import { lion } from '@kstar/optim-lion';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measurePartitionedUpdate } from '../src/bench-partition.ts';

// Gradient partitioning (`partitionedUpdate`): exact against the whole update, and the extra bytes of one update of
// the tied 50257×768 gpt2-124m embedding stay within the chunk (+1%) by tf.profile, on the tfjs-ops fallback.
const FACTORIES = {
  adamw: (impl: 'fallback' | 'auto') => adamw({ impl, weightDecay: 0.1 }),
  lion: (impl: 'fallback' | 'auto') => lion({ impl, weightDecay: 0.1 }),
  adam8bit: (impl: 'fallback' | 'auto') => adam8bit({ impl, blockSize: 64 }),
  'lazy-adagrad': (impl: 'fallback' | 'auto') => lazyAdagrad({ impl, lazyRows: 'off' }),
} as const;

let start = 0;
beforeAll(async () => {
  await selectBackend('cpu');
  start = tf.memory().numTensors;
});
afterAll(() => expect(tf.memory().numTensors).toBe(start));

describe('gradient partitioning (cpu)', () => {
  it.each(Object.keys(FACTORIES) as (keyof typeof FACTORIES)[])(
    '%s: row chunks give the same parameters and state as the whole update (fallback and native)',
    async (name) => {
      const shape = [53, 96]; // 53 rows: the last chunk is partial
      for (const impl of ['fallback', 'auto'] as const) {
        const make = () => FACTORIES[name](impl);
        const [whole, parts] = [make(), make()];
        // Two buffers (a clone would share p1's buffer and turn its in-place kernel off).
        const init = (v: string) =>
          tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, 0.1, 'float32', 3), true, v));
        const p1 = init(`pw_${name}_${impl}`);
        const p2 = init(`pp_${name}_${impl}`);
        const s1 = whole.init({ name: `w_${name}_${impl}`, shape, role: 'matrix' });
        const s2 = parts.init({ name: `p_${name}_${impl}`, shape, role: 'matrix' });
        // The largest budget that still gives at least 4 chunks.
        let chunkBytes = 2 ** 24;
        while (chunkBytes > 64 && (planPartition(parts, shape, s2, chunkBytes)?.chunks ?? 1) < 4)
          chunkBytes >>= 1;
        const plan = planPartition(parts, shape, s2, chunkBytes);
        expect(plan, 'partitioned').not.toBeNull();
        expect(plan!.chunks).toBeGreaterThan(1);
        for (let step = 1; step <= 3; step++) {
          const g = tf.randomNormal(shape, 0, 1, 'float32', 10 + step);
          whole.update(p1, g, s1, step);
          partitionedUpdate(parts, p2, g, s2, step, { chunkBytes, writer: sliceWriter });
          g.dispose();
        }
        const a = await p1.data();
        const b = await p2.data();
        const before = tf.tidy(() => tf.randomNormal(shape, 0, 0.1, 'float32', 3).dataSync());
        let moved = 0;
        for (let i = 0; i < a.length; i++) {
          expect(Math.abs(a[i]! - b[i]!), `${name} ${impl} p[${i}]`).toBeLessThanOrEqual(
            1e-7 + 1e-6 * Math.abs(a[i]!),
          );
          moved = Math.max(moved, Math.abs(a[i]! - before[i]!));
        }
        expect(moved).toBeGreaterThan(1e-5);
        for (const k of Object.keys(s1)) {
          expect(Array.from(await s2[k]!.data()), `${name} ${impl} state ${k}`).toEqual(
            Array.from(await s1[k]!.data()),
          );
        }
        tf.dispose([p1, p2, ...Object.values(s1), ...Object.values(s2)]);
      }
    },
  );

  it('engine option updatePartition: a tiny GPT trains to the same parameters with and without it (AdamW)', async () => {
    const config = resolveConfig('tiny', { vocabSize: 256 });
    const b = tf.tidy(() => ({
      inputs: tf.randomUniform([2, 16], 0, 256, 'int32', 1),
      targets: tf.randomUniform([2, 16], 0, 256, 'int32', 2),
    }));
    const finals: Float32Array[][] = [];
    for (const updatePartition of [undefined, { chunkBytes: 64 * 1024, writer: sliceWriter }]) {
      const model = createGPT(config, { seed: 3 });
      const engine = new TrainingEngine(model, {
        optimizer: adamw({ lr: 1e-2 }),
        mode: 'full',
        ...(updatePartition ? { updatePartition } : {}),
      });
      for (let i = 0; i < 2; i++) await engine.trainStep(b);
      finals.push([...model.variables.values()].map((v) => v.dataSync().slice() as Float32Array));
      engine.dispose();
      engine.ledger.detach();
      model.dispose();
    }
    for (const [k, a] of finals[0]!.entries()) expect(Array.from(finals[1]![k]!)).toEqual(Array.from(a));
    tf.dispose([b.inputs, b.targets]);
  });

  it('factored and row-lazy states are not partitioned (they update whole)', () => {
    const lazy = lazyAdagrad({ lazyRows: 'matrices' });
    const s = lazy.init({ name: 'lazyrows', shape: [64, 8], role: 'matrix' });
    expect(planPartition(lazy, [64, 8], s, 1024)).toBeNull();
    tf.dispose(Object.values(s));
  });

  // Lion keeps this test light (5 element-wise ops a chunk); `pnpm bench partition` measures AdamW, 8-bit Adam and
  // Lazy Adagrad on the same shape (bench/results/2026-11-23-partition-gpt2-embedding.json).
  it('Lion update of the tied 50257×768 embedding: extra bytes ≤ chunk + 1% (tf.profile and ledger), fallback ops', async () => {
    const chunkBytes = 8 * 2 ** 20;
    const r = await measurePartitionedUpdate(FACTORIES.lion, 'fallback', [50257, 768], chunkBytes, {
      warmUp: false,
    });
    console.log(
      `[trainer] partitioned Lion (fallback) on [50257, 768]: ${r.chunks} chunks of ${r.rowsPerChunk} rows; extra ${r.profileExtraBytes} B (tf.profile), ${r.ledgerExtraBytes} B (ledger); chunk ${chunkBytes} B; weight ${r.weightBytes} B`,
    );
    expect(r.chunks).toBeGreaterThan(1);
    expect(r.profileExtraBytes).toBeGreaterThan(0);
    expect(r.profileExtraBytes).toBeLessThanOrEqual(chunkBytes * 1.01);
    expect(r.ledgerExtraBytes).toBeLessThanOrEqual(chunkBytes * 1.01);
    // Without partitioning the same update holds weight-sized temporaries (a smaller weight keeps the test light).
    const whole = await measurePartitionedUpdate(FACTORIES.lion, 'fallback', [4096, 768], null);
    expect(whole.profileExtraBytes).toBeGreaterThanOrEqual(whole.weightBytes);
  });
});
