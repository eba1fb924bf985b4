import {
  inPlaceWebGPUStep,
  expectNoValidationError as noValidationError,
  onBackend,
  skipWebGPU,
} from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { came, cameWhich } from '../src/index.ts';
import { itMatchesReferences } from './backend-cases.ts';
import { came64Init, came64Step, randn, relErr, rng } from './helpers.ts';
import { PARITY_HP } from './parity.ts';

const skip = skipWebGPU('the CAME WebGPU kernels were NOT tested');

const TOL = 1e-5;

describe.skipIf(skip)('webgpu (Dawn via the webgpu package)', () => {
  onBackend('webgpu');

  itMatchesReferences('webgpu', {
    goldenAround: noValidationError,
    parityAround: inPlaceWebGPUStep,
    seed: 51,
  });

  it('does not write through a live clone (shared buffer → fallback); values read between steps are not stale', async () => {
    const shape = [6, 10];
    const next = rng(77);
    const p0 = Float32Array.from(randn(next, 60, 0.5));
    const p = tf.tidy(() => tf.variable(tf.tensor(p0, shape), true, 'webgpu-alias/W'));
    const plugin = came(PARITY_HP);
    const s = plugin.init({ name: 'webgpu-alias/W', shape, role: 'matrix' });
    const ref = Float64Array.from(p0);
    const s64 = came64Init(shape);
    for (let t = 1; t <= 3; t++) {
      const g = Float32Array.from(randn(next, 60));
      const gt = tf.tensor(g, shape);
      const clone = t === 1 ? tf.clone(p) : null;
      expect(cameWhich(p, gt, s)).toBe(t === 1 ? 'fallback' : 'native');
      plugin.update(p, gt, s, t);
      came64Step(ref, g, s64, PARITY_HP);
      if (clone) {
        expect(Array.from(await clone.data())).toEqual(Array.from(p0));
        clone.dispose();
      }
      gt.dispose();
      // Each read caches the values on the CPU; the next in-place update must invalidate that cache.
      expect(relErr(await p.data(), ref), `p after step ${t}`).toBeLessThan(TOL);
      expect(relErr(await s.m.data(), s64.expAvg), `m after step ${t}`).toBeLessThan(TOL);
      expect(relErr(await s.vRow.data(), s64.expAvgSqRow!), `vRow after step ${t}`).toBeLessThan(TOL);
      expect(relErr(await s.resCol.data(), s64.expAvgResCol!), `resCol after step ${t}`).toBeLessThan(TOL);
    }
    tf.dispose([p, ...Object.values(s)]);
  });
});
