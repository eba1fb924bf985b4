import { backendMemory } from '@kstar/kernels';
import {
  callUntyped,
  expectNoValidationError,
  onBackend,
  skipWebGPU,
  submitPendingWebGPU,
} from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { adafactor, adafactorKernel } from '../src/index.ts';
import { Adafactor64, HF_DEFAULTS, randn, relErr, rng } from './helpers.ts';
import { checkParity, formatParity, goldenCheck, parity, TOL } from './replay.ts';

const skip = skipWebGPU('the WebGPU Adafactor kernel was NOT tested');

describe.skipIf(skip)('webgpu (Dawn via the webgpu package)', () => {
  onBackend('webgpu');

  it('golden replay: both runs within 1e-5 through the WGSL kernel, no validation error', async () => {
    expect(tf.getBackend()).toBe('webgpu');
    await goldenCheck('webgpu', expectNoValidationError);
  });

  it('native kernel vs fallback vs float64 reference agree within 1e-5 (every switch, 3-D/4-D, m or n = 1, scalar)', async () => {
    const rows = await parity(expectNoValidationError);
    console.log(formatParity('webgpu', rows));
    checkParity(rows);
  });

  it('in place: p and the state keep their buffers; after the first step no GPU bytes are added; no tensor leaks', async () => {
    const plugin = adafactor({ relativeStep: false, lr: 0.05, beta1: 0.9, weightDecay: 0.01 });
    const shape = [64, 48];
    const p = tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, 1, 'float32', 3), true, 'gpu-inplace/W'));
    const s = plugin.init({ name: 'gpu-inplace/W', shape, role: 'matrix' });
    const ids = [p.dataId, ...Object.values(s).map((t) => t.dataId)];
    const count = tf.memory().numTensors;
    for (let t = 1; t <= 3; t++) {
      // Computed on the GPU (a randomNormal tensor alone would be uploaded inside the update and counted there).
      const g = tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', 10 + t), 1));
      submitPendingWebGPU();
      const gpuBefore = backendMemory().gpuBytesInUse!;
      await expectNoValidationError(() => plugin.update(p, g, s, t));
      // Small temporaries (row means, partial sums, 2 scalars) are released; no parameter-sized buffer stays.
      if (t > 1) expect(backendMemory().gpuBytesInUse).toBeLessThanOrEqual(gpuBefore);
      g.dispose();
    }
    expect([p.dataId, ...Object.values(s).map((t) => t.dataId)]).toEqual(ids);
    expect(tf.memory().numTensors).toBe(count);
    tf.dispose([p, ...Object.values(s)]);
  });

  it('does not write through a live clone (shared buffer → fallback), and reads between steps are not stale', async () => {
    const plugin = adafactor();
    const shape = [5, 7];
    const p0 = randn(rng(8), 35, 0.5);
    const p = tf.tidy(() => tf.variable(tf.tensor(p0, shape), true, 'gpu-alias/W'));
    const s = plugin.init({ name: 'gpu-alias/W', shape, role: 'matrix' });
    const ref = new Adafactor64(shape, HF_DEFAULTS);
    const pr = Float64Array.from(p0);
    const clone = tf.clone(p);
    const next = rng(9);
    for (let t = 1; t <= 3; t++) {
      const g = randn(next, 35);
      const gt = tf.tensor(g, shape);
      expect(callUntyped(adafactorKernel.which, { param: p, grad: gt, state: s, hp: {} })).toBe(
        t === 1 ? 'fallback' : 'native',
      );
      await expectNoValidationError(() => plugin.update(p, gt, s, t));
      ref.update(pr, g);
      gt.dispose();
      if (t === 1) {
        expect(Array.from(await clone.data())).toEqual(Array.from(p0));
        clone.dispose();
      }
      // Each read caches the values on the CPU; the next in-place update must invalidate that cache.
      expect(relErr(await p.data(), pr), `p after step ${t}`).toBeLessThanOrEqual(TOL);
      expect(relErr(await s.exp_avg_sq_row!.data(), ref.row!), `row after step ${t}`).toBeLessThanOrEqual(
        TOL,
      );
    }
    tf.dispose([p, ...Object.values(s)]);
  });
});
