import '@tensorflow/tfjs-backend-wasm';
import { callUntyped, expectFillStepsInPlace, onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Adafactor, adafactor, adafactorFromReferenceHparams, adafactorKernel } from '../src/index.ts';
import { goldenAdafactorRuns } from './helpers.ts';
import { checkParity, formatParity, goldenCheck, parity, replayOptimizer, TOL } from './replay.ts';

onBackend('wasm');

describe('wasm backend', () => {
  it('golden replay: both runs within 1e-5 through the wasm kernel (in place)', async () => {
    expect(tf.getBackend()).toBe('wasm');
    await goldenCheck('wasm');
  });

  it('golden replay through the tfjs-ops fallback on wasm', async () => {
    await goldenCheck('wasm', undefined, 'fallback');
  });

  it('drop-in Adafactor matches as well', async () => {
    const { runs } = goldenAdafactorRuns();
    for (const { run, index } of runs) {
      const opt = new Adafactor(callUntyped(adafactorFromReferenceHparams, run.hparams).hparams);
      const r = await replayOptimizer(opt, index, `wasm-dropin-${index}`);
      console.log(
        `[optim-adafactor] golden run ${index} (Adafactor class, wasm) worst ${r.worst.toExponential(2)} at ${r.worstAt}`,
      );
      expect(r.worst).toBeLessThanOrEqual(TOL);
      opt.dispose();
    }
  });

  it('native kernel vs fallback vs float64 reference agree within 1e-5', async () => {
    const rows = await parity();
    console.log(formatParity('wasm', rows));
    checkParity(rows);
  });

  it('updates in place (buffers kept), leaks nothing', () => {
    const plugin = adafactor({ relativeStep: false, lr: 0.1, beta1: 0.9 });
    const { p, s } = expectFillStepsInPlace(
      plugin,
      { name: 'wasm-inplace/W', shape: [4, 4], role: 'matrix' },
      {
        beforeUpdate: (param, grad, state) =>
          expect(callUntyped(adafactorKernel.which, { param, grad, state, hp: {} })).toBe('native'),
      },
    );
    expect(p.dataSync()[0]).toBeLessThan(1);
    tf.dispose([p, ...Object.values(s)]);
  });
});
