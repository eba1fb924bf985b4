import { mst } from '@kstar/act-mst';
import { TrainingEngine } from '@kstar/core';
import { createGPT, GPT_PRESETS, type GPTModel } from '@kstar/gpt';
import { sgdPlugin } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relErr } from './mst-helpers.ts';

/** Plain SGD: enough to take a step; the gradient checks use computeGradients (no update). */
const sgd = sgdPlugin(1e-3);

function batchOf(B: number, T: number, V: number) {
  const tok = (salt: number) => {
    const d = new Int32Array(B * T);
    for (let i = 0; i < B * T; i++) d[i] = (i * 7 + salt * 13 + ((i * i) % 5)) % V;
    return tf.tensor2d(d, [B, T], 'int32');
  };
  return { inputs: tok(0), targets: tok(1) };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('whole model: tiny GPT with MsT equals the baseline', () => {
  let model: GPTModel;
  beforeAll(() => {
    model = createGPT(GPT_PRESETS.tiny, { seed: 5 });
  });
  afterAll(() => model.dispose());

  // T = 37: not a multiple of any chunk below; N = 74 rows.
  const B = 2;
  const T = 37;
  const variants = [
    { label: 'chunks 4', options: { chunks: 4 } },
    {
      label: 'mlp 3, attention 8 tokens, loss 5',
      options: { mlpChunks: 3, attentionChunk: 8, lossChunks: 5 },
    },
    { label: 'defaults', options: {} },
  ];

  for (const mode of ['full', 'segmented'] as const) {
    it(`${mode} mode: same loss (1e-5) and gradients (1e-4) for every parameter`, async () => {
      const batch = batchOf(B, T, GPT_PRESETS.tiny.vocabSize);
      const base = new TrainingEngine(model, { optimizer: sgd, mode });
      const ref = await base.computeGradients(batch);
      for (const v of variants) {
        const start = tf.memory().numTensors;
        const engine = new TrainingEngine(model, { optimizer: sgd, mode, activations: [mst(v.options)] });
        const got = await engine.computeGradients(batch);
        expect(Math.abs(got.loss - ref.loss) / Math.abs(ref.loss), `${v.label}: loss`).toBeLessThan(1e-5);
        expect([...got.grads.keys()].sort()).toEqual([...ref.grads.keys()].sort());
        for (const [name, g] of ref.grads) {
          expect(relErr(got.grads.get(name)!, g), `${v.label}: d${name}`).toBeLessThan(1e-4);
        }
        tf.dispose([...got.grads.values()]);
        expect(tf.memory().numTensors, `${v.label}: tensors after computeGradients`).toBe(start);
        engine.dispose();
      }
      tf.dispose([...ref.grads.values(), batch.inputs, batch.targets]);
      base.dispose();
    });
  }

  it('a training step leaves no tensor behind (segmented and full)', async () => {
    const batch = batchOf(B, T, GPT_PRESETS.tiny.vocabSize);
    for (const mode of ['full', 'segmented'] as const) {
      const engine = new TrainingEngine(model, { optimizer: sgd, mode, activations: [mst({ chunks: 3 })] });
      const start = tf.memory().numTensors;
      const r = await engine.trainStep(batch);
      expect(Number.isFinite(r.loss)).toBe(true);
      expect(tf.memory().numTensors).toBe(start);
      engine.dispose();
    }
    tf.dispose([batch.inputs, batch.targets]);
  });
});
