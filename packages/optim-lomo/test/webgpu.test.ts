import { TrainingEngine } from '@kstar/core';
import { inPlaceGradAccumulator } from '@kstar/kernels';
import { callUntyped, expectNoValidationError, onBackend, skipWebGPU } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { adalomo, adalomoKernel, lomo, lomoKernel, lomoStep } from '../src/index.ts';
import { disposeModel, relErr, snapshot, TOL, toyBatch, toyModel } from './helpers.ts';
import { adalomoParity, checkAdalomoParity, lomoParity } from './parity.ts';
import { ADALOMO_RUN, formatReplay, pluginForRun, replay, SGD_RUN } from './replay.ts';

const skip = skipWebGPU('the WebGPU LOMO/AdaLomo kernels were NOT tested');

describe.skipIf(skip)('webgpu (Dawn via the webgpu package)', () => {
  onBackend('webgpu');

  it('golden replay: sgd run as LOMO and the adalomo run within 1e-5 through the WGSL kernels', async () => {
    expect(tf.getBackend()).toBe('webgpu');
    for (const index of [SGD_RUN, ADALOMO_RUN]) {
      const r = await replay(pluginForRun(index), index, `gpu-${index}`, expectNoValidationError);
      console.log(formatReplay(`golden run ${index} (webgpu)`, r));
      expect(r.worst).toBeLessThanOrEqual(TOL);
    }
  });

  it('kernels vs fallback vs float64 references within 1e-5, no validation error', async () => {
    const rows = await adalomoParity(expectNoValidationError);
    console.log(
      `[optim-lomo] adalomo parity (webgpu): ${rows.map((r) => `${r.label} ${r.native.toExponential(1)}/${r.fallback.toExponential(1)}`).join('; ')}`,
    );
    checkAdalomoParity(rows);
    expect(await lomoParity(expectNoValidationError)).toBeLessThanOrEqual(1e-6);
  });

  it('native kernels run in place (buffers kept) and reads are not stale', async () => {
    const plugin = adalomo({ lr: 0.1 });
    const p = tf.tidy(() => tf.variable(tf.fill([8, 6], 1), true, 'gpu-inplace/W'));
    const s = plugin.init({ name: 'gpu-inplace/W', shape: [8, 6], role: 'matrix' });
    const ids = [p.dataId, ...Object.values(s).map((t) => t.dataId)];
    const g = tf.tidy(() => tf.mul(tf.randomNormal([8, 6], 0, 1, 'float32', 4), 1));
    expect(callUntyped(adalomoKernel.which, { param: p, grad: g, state: s, hp: {} })).toBe('native');
    expect(callUntyped(lomoKernel.which, { param: p, grad: g, hp: {} })).toBe('native');
    const first = Float32Array.from(await p.data()); // caches a CPU copy
    await expectNoValidationError(() => plugin.update(p, g, s, 1));
    const second = await p.data();
    expect(Array.from(second)).not.toEqual(Array.from(first));
    expect([p.dataId, ...Object.values(s).map((t) => t.dataId)]).toEqual(ids);
    tf.dispose([p, g, ...Object.values(s)]);
  });

  it('segmented LOMO + clipGradNorm (lomoStep) = full-graph clipped SGD', async () => {
    const mk = () => toyModel({ vocab: 30, dim: 12, depth: 2, seed: 31, tied: true });
    const a = mk();
    const b = mk();
    const batch = toyBatch(30, 2, 5, 32);
    const seg = new TrainingEngine(a, {
      optimizer: lomo({ lr: 0.2, clipGradNorm: 0.5 }),
      mode: 'segmented',
      gradAccumulator: inPlaceGradAccumulator,
    });
    const r = await lomoStep(seg, batch, seg.optimizer, { gradAccumulator: inPlaceGradAccumulator });
    expect(r.clipCoef).toBeLessThan(1);
    // Reference: full-graph gradients, clipped by the same global norm.
    const full = new TrainingEngine(b, { optimizer: lomo({ lr: 0.2 }), mode: 'full' });
    const { grads } = await full.computeGradients(batch);
    let sq = 0;
    for (const g of grads.values()) for (const v of await g.data()) sq += v * v;
    const norm = Math.sqrt(sq);
    expect(Math.abs(norm - r.gradNorm!) / norm).toBeLessThan(1e-5);
    const coef = Math.min(1, 0.5 / (norm + 1e-6));
    const sa = await snapshot(a);
    for (const [n, v] of b.variables) {
      const p = await v.data();
      const g = await grads.get(n)!.data();
      const want = Float64Array.from(p, (x, i) => x - 0.2 * coef * g[i]!);
      expect(relErr(sa[n]!, want), n).toBeLessThanOrEqual(TOL);
    }
    tf.dispose([...grads.values(), batch.inputs, batch.targets]);
    seg.ledger.detach();
    full.ledger.detach();
    disposeModel(a);
    disposeModel(b);
  });
});
