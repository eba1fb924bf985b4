import { inPlaceWebGPUStep, onBackend, skipWebGPU } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { lion } from '../src/index.ts';
import { randn, rng } from './helpers.ts';
import { aliasingCheck, checkRow, exactStepCheck, formatRows, lionParity, PARITY_SHAPES } from './parity.ts';
import { expectEveryGoldenRun } from './replay.ts';

const skip = skipWebGPU('the WebGPU Lion kernel was NOT tested');

const TOL = 1e-5;

describe.skipIf(skip)('webgpu (Dawn via the webgpu package, lavapipe)', () => {
  onBackend('webgpu');

  it('golden replay, every Lion run, plugin (WGSL kernel, in place) and drop-in class', async () => {
    await expectEveryGoldenRun('webgpu', TOL);
  });

  it('native kernel vs fallback vs float64: no validation error, no new GPU buffer', async () => {
    const rows = [];
    for (const [i, shape] of PARITY_SHAPES.entries())
      rows.push(await lionParity(shape, 51 + i, inPlaceWebGPUStep));
    console.log(formatRows('webgpu', rows));
    rows.forEach(checkRow);
  });

  it('closed forms: |Δp| = lr exactly, g = 0 & m = 0 keeps p, keras single step', async () => {
    await exactStepCheck();
  });

  it('does not write through a live clone (shared buffer → assign fallback); native again once it is gone', () =>
    aliasingCheck('webgpu-alias'));

  it('values read between updates are not served stale (CPU cache invalidated)', async () => {
    const plugin = lion({ lr: 0.125 });
    const p = tf.tidy(() => tf.variable(tf.zeros([64]), true, 'webgpu-stale/p'));
    const s = plugin.init({ name: p.name, shape: [64], role: 'vector' });
    const next = rng(3);
    let expected = 0;
    for (let t = 1; t <= 3; t++) {
      const g = tf.tensor(randn(next, 64).map((x) => Math.abs(x) + 0.1)); // all positive: p drops lr a step
      plugin.update(p, g, s, t);
      g.dispose();
      expected -= 0.125;
      expect(Array.from(await p.data())).toEqual(new Array(64).fill(expected));
      expect((await s.m.data())[0]).not.toBe(0);
    }
    tf.dispose([p, s.m]);
  });
});
