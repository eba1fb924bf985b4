import '@tensorflow/tfjs-backend-wasm';
import { TrainingEngine } from '@kstar/core';
import { selectBackend } from '@kstar/kernels';
import { callUntyped } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adalomo, adalomoKernel, lomo, lomoKernel, lomoStep } from '../src/index.ts';
import { disposeModel, relErr, snapshot, TOL, toyBatch, toyModel } from './helpers.ts';
import { adalomoParity, checkAdalomoParity, lomoParity } from './parity.ts';
import { ADALOMO_RUN, formatReplay, pluginForRun, replay, SGD_RUN } from './replay.ts';

let start = 0;

beforeAll(async () => {
  // selectBackend also registers K*'s wasm kernels (UnsortedSegmentSum: the gradient of the embedding gather).
  expect((await selectBackend('wasm')).backend).toBe('wasm');
  start = tf.memory().numTensors;
});

afterAll(() => {
  expect(tf.memory().numTensors).toBe(start);
});

describe('wasm backend', () => {
  it('golden replay: sgd run as LOMO and the adalomo run within 1e-5 (native kernels and fallback)', async () => {
    expect(tf.getBackend()).toBe('wasm');
    for (const index of [SGD_RUN, ADALOMO_RUN]) {
      for (const impl of ['auto', 'fallback'] as const) {
        const r = await replay(pluginForRun(index, impl), index, `wasm-${index}-${impl}`);
        console.log(formatReplay(`golden run ${index} (wasm, ${impl})`, r));
        expect(r.worst).toBeLessThanOrEqual(TOL);
      }
    }
  });

  it('kernels vs float64 references within 1e-5', async () => {
    const rows = await adalomoParity();
    checkAdalomoParity(rows);
    expect(await lomoParity()).toBeLessThanOrEqual(1e-6);
  });

  it('updates in place and invalidates the cached XNNPACK weights: a matMul after the update sees the new weights', async () => {
    for (const make of [() => lomo({ lr: 0.5 }), () => adalomo({ lr: 0.5 })]) {
      const plugin = make();
      const name = `wasm-inplace-${plugin.name}/W`;
      const p = tf.tidy(() => tf.variable(tf.ones([4, 4]), true, name));
      const s = plugin.init({ name, shape: [4, 4], role: 'matrix' });
      const x = tf.ones([2, 4]);
      const y0 = tf.matMul(x, p); // packs p's weights into a cached XNNPACK operator
      const ids = [p.dataId, ...Object.values(s).map((t) => t.dataId)];
      const g = tf.tensor(
        Float32Array.from({ length: 16 }, (_, i) => (i % 3) - 1),
        [4, 4],
      );
      const kernel = plugin.name === 'lomo' ? lomoKernel : adalomoKernel;
      expect(callUntyped(kernel.which, { param: p, grad: g, state: s, hp: {} })).toBe('native');
      plugin.update(p, g, s, 1);
      expect([p.dataId, ...Object.values(s).map((t) => t.dataId)]).toEqual(ids);
      const y1 = tf.matMul(x, p);
      const copy = tf.tensor(await p.data(), [4, 4]);
      const want = tf.matMul(x, copy);
      expect(Array.from(await y1.data())).toEqual(Array.from(await want.data()));
      expect(Array.from(await y1.data())).not.toEqual(Array.from(await y0.data()));
      tf.dispose([p, x, y0, y1, want, copy, g, ...Object.values(s)]);
    }
  });

  it('segmented LOMO over two steps = two SGD steps computed by the full-graph engine', async () => {
    const mk = () => toyModel({ vocab: 30, dim: 12, depth: 2, seed: 21, tied: true });
    const a = mk();
    const b = mk();
    const batch = toyBatch(30, 2, 5, 22);
    const seg = new TrainingEngine(a, { optimizer: lomo({ lr: 0.1 }), mode: 'segmented' });
    const full = new TrainingEngine(b, { optimizer: lomo({ lr: 0.1 }), mode: 'full' });
    for (let t = 0; t < 2; t++) {
      await lomoStep(seg, batch);
      await full.trainStep(batch);
    }
    const sa = await snapshot(a);
    const sb = await snapshot(b);
    for (const n of Object.keys(sa)) expect(relErr(sa[n]!, sb[n]!), n).toBeLessThanOrEqual(TOL);
    tf.dispose([batch.inputs, batch.targets]);
    seg.ledger.detach();
    full.ledger.detach();
    disposeModel(a);
    disposeModel(b);
  });
});
