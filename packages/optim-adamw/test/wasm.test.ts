import '@tensorflow/tfjs-backend-wasm';
import { expectFillStepsInPlace, onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { adamw, adamwFromReferenceHparams } from '../src/index.ts';
import { goldenAdamW, goldenAdamWDropIn } from './helpers.ts';
import { replayOptimizer, replayPlugin } from './replay.ts';

const TOL = 1e-5;
onBackend('wasm');

describe('wasm backend: golden replay', () => {
  it('plugin (wasm kernel, in place) matches torch.optim.AdamW within 1e-5 at every recorded step', () => {
    expect(tf.getBackend()).toBe('wasm');
    const { run } = goldenAdamW();
    const r = replayPlugin(adamwFromReferenceHparams(run.hparams), 'wasm-plugin');
    console.log(
      `[optim-adamw] golden replay (plugin, wasm kernel) worst rel err ${r.worst.toExponential(3)}`,
    );
    expect(Object.keys(r.errors).length).toBe(run.after.length);
    expect(r.worst).toBeLessThanOrEqual(TOL);
  });

  it('drop-in AdamW matches as well', () => {
    const opt = goldenAdamWDropIn();
    const r = replayOptimizer(opt, 'wasm-dropin');
    console.log(
      `[optim-adamw] golden replay (AdamW class, wasm kernel) worst rel err ${r.worst.toExponential(3)}`,
    );
    expect(r.worst).toBeLessThanOrEqual(TOL);
    opt.dispose();
  });

  it('updates in place on wasm (buffers kept) and leaks nothing', () => {
    const plugin = adamw();
    const { p, s } = expectFillStepsInPlace(plugin, {
      name: 'wasm-inplace/W',
      shape: [4, 4],
      role: 'matrix',
    });
    expect(p.dataSync()[0]).toBeLessThan(1);
    tf.dispose([p, ...Object.values(s)]);
  });
});
