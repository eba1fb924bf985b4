import { checkpoint } from '@kstar/act-checkpoint';
import { compress } from '@kstar/act-compress';
import { mst } from '@kstar/act-mst';
import { type ActivationStrategy, TrainingEngine } from '@kstar/core';
import { createGPT, resolveConfig } from '@kstar/gpt';
import { inPlaceGradAccumulator, selectBackend } from '@kstar/kernels';
import { adamw } from '@kstar/optim-adamw';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

export type Backend = 'wasm' | 'cpu';

// Predicted activation bytes (the GPT's derivation with the strategy's plan, selective recompute and codec) against
// the engine's ledger, on the 4-block tiny GPT at an uneven T.
const tiny = { config: resolveConfig('tiny', { vocabSize: 256, nLayer: 4 }), B: 2, T: 37 };
const T = tiny.T;
// Narrow, long and with a large vocabulary: the chunked attention's and loss's backward moments decide the peak.
const wide = {
  config: resolveConfig('tiny', { vocabSize: 2000, nEmbd: 32, nHead: 4, nLayer: 1 }),
  B: 2,
  T: 128,
};
type Shape = typeof tiny;

const cases: Array<[string, 'full' | 'segmented', () => ActivationStrategy[]]> = [
  ['every', 'segmented', () => [checkpoint({ plan: 'every' })]],
  ['sqrt', 'segmented', () => [checkpoint({ plan: 'sqrt' })]],
  ['selective (full graph)', 'full', () => [checkpoint({ plan: 'selective' })]],
  ['every + selective', 'segmented', () => [checkpoint({ plan: 'every', selective: true })]],
  ['every + bf16', 'segmented', () => [checkpoint({ plan: 'every' }), compress({ format: 'bf16' })]],
  ['every + int8', 'segmented', () => [checkpoint({ plan: 'every' }), compress({ format: 'int8' })]],
];

type Chunks = { mlpChunks: number; attentionChunk: number; lossChunks: number };
const chunks: Chunks = { mlpChunks: 2, attentionChunk: 16, lossChunks: 3 };
// One chunk for every op (the whole [N, 4D] MLP graph recomputed at once) and fine chunks: the MLP term's slope over
// chunk sizes (the previous formula was 4% high at one chunk and 7% low at eight, on wasm). The wide shape: attention
// and loss whole or halved (the previous formulas, 6·G·c·T and 5·c·V, counted up to twice what they hold).
const coarse: Chunks = { mlpChunks: 1, attentionChunk: T, lossChunks: 1 };
const fine: Chunks = { mlpChunks: 8, attentionChunk: 4, lossChunks: 16 };
const chunksOf = new Map<string, Chunks>();
const shapeOf = new Map<string, Shape>();
const mstCase = (name: string, mode: 'full' | 'segmented', c: Chunks, every: boolean, shape = tiny) => {
  chunksOf.set(name, c);
  shapeOf.set(name, shape);
  return [name, mode, () => [...(every ? [checkpoint({ plan: 'every' })] : []), mst(c)]] as const;
};
const mstCases: Array<readonly [string, 'full' | 'segmented', () => ActivationStrategy[]]> = [
  mstCase('mst', 'full', chunks, false),
  mstCase('every + mst', 'segmented', chunks, true),
  mstCase('mst, one MLP chunk', 'full', coarse, false),
  mstCase('every + mst, fine chunks', 'segmented', fine, true),
  mstCase(
    'mst, whole attention and loss (wide)',
    'full',
    { mlpChunks: 16, attentionChunk: 128, lossChunks: 1 },
    false,
    wide,
  ),
  mstCase(
    'every + mst, half attention and loss (wide)',
    'segmented',
    { mlpChunks: 16, attentionChunk: 64, lossChunks: 2 },
    true,
    wide,
  ),
];

/**
 * One backend per test file (switching from wasm to cpu in one process leaves state behind that the ledger sees).
 * cpu is slow on 2 cores: fewer cases there (the selective block's derivation differs between the backends).
 */
export function predictionSuite(backend: Backend): void {
  const list =
    backend === 'wasm' ? [...cases, ...mstCases] : [...cases.slice(2, 4), mstCases[2]!, mstCases[4]!];
  describe(`activation-byte prediction vs the ledger (${backend})`, () => {
    it.each(list)('%s: within 1%', async (_name, mode, make) => {
      await selectBackend(backend);
      const { config, B, T } = shapeOf.get(_name) ?? tiny;
      const model = createGPT(config, { seed: 1 });
      const strategies = make();
      const engine = new TrainingEngine(model, {
        optimizer: adamw(),
        mode,
        activations: strategies,
        gradAccumulator: inPlaceGradAccumulator,
      });
      const b = tf.tidy(() => ({
        inputs: tf.randomUniform([B, T], 0, config.vocabSize, 'int32', 3),
        targets: tf.randomUniform([B, T], 0, config.vocabSize, 'int32', 4),
      }));
      const r = await engine.trainStep(b);
      const ck = strategies.find((s) => s.name === 'checkpoint') as ReturnType<typeof checkpoint> | undefined;
      const withMst = strategies.some((s) => s.name === 'mst');
      const codec = strategies.find((s) => s.codec)?.codec;
      const predicted = model.predictActivationBytes({
        batch: B,
        seq: T,
        mode,
        backend,
        ...(mode === 'segmented' ? { segments: engine.segments.map((s) => [...s]) } : {}),
        selectiveAttention: ck?.selective ?? false,
        ...(withMst ? { mst: chunksOf.get(_name)! } : {}),
        ...(codec ? { savedInputBytes: codec.savedBytes([B, T, config.nEmbd]) } : {}),
      });
      const ratio = predicted / r.activationPeakBytes;
      console.log(
        `${backend} ${_name}: predicted ${predicted}, measured ${r.activationPeakBytes}, ratio ${ratio.toFixed(4)}`,
      );
      // Freed before the check: a failed case must not leave buffers that the next case's ledger counts.
      tf.dispose([b.inputs, b.targets]);
      engine.dispose();
      model.dispose();
      expect(Math.abs(ratio - 1)).toBeLessThan(0.01);
    });
  });
}
