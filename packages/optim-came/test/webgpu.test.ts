import {
  inPlaceWebGPUStep,
  expectNoValidationError as noValidationError,
  onBackend,
  skipWebGPU,
} from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { came, cameWhich } from '../src/index.ts';
import { came64Init, came64Step, randn, relErr, rng } from './helpers.ts';
import {
  cameParity,
  checkParity,
  formatParity,
  goldenOnBackend,
  PARITY_HP,
  PARITY_SHAPES,
} from './parity.ts';
import { expectDropInMatchesGolden } from './replay.ts';

const skip = skipWebGPU('the CAME WebGPU kernels were NOT tested');

const TOL = 1e-5;

describe.skipIf(skip)('webgpu (Dawn via the webgpu package)', () => {
  onBackend('webgpu');

  it('golden replay: plugin (WGSL kernels, in place) and fallback match came_pytorch within 1e-5, no validation error', async () => {
    const { native, fallback } = await goldenOnBackend('webgpu', noValidationError);
    expect(native).toBeLessThanOrEqual(TOL);
    expect(fallback).toBeLessThanOrEqual(TOL);
  });

  it('golden replay: the drop-in CAME class matches as well', async () => {
    await expectDropInMatchesGolden('webgpu', TOL);
  });

  it('native kernel vs fallback vs float64 (5 steps, ranks 0–3): no validation error, no GPU memory growth after step 1', async () => {
    const rows = [];
    for (const [i, shape] of PARITY_SHAPES.entries())
      rows.push(await cameParity(shape, 51 + i, inPlaceWebGPUStep));
    console.log(formatParity('webgpu', rows));
    rows.forEach(checkParity);
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
