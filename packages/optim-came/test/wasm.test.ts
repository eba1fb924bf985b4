import '@tensorflow/tfjs-backend-wasm';
import { expectFillStepsInPlace, onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { came, cameWhich } from '../src/index.ts';
import { cameParity, checkParity, formatParity, goldenOnBackend, PARITY_SHAPES } from './parity.ts';
import { expectDropInMatchesGolden } from './replay.ts';

const TOL = 1e-5;
onBackend('wasm');

describe('wasm backend', () => {
  it('golden replay: plugin (wasm kernel, in place) and fallback match came_pytorch within 1e-5 at every recorded step', async () => {
    expect(tf.getBackend()).toBe('wasm');
    const { native, fallback } = await goldenOnBackend('wasm');
    expect(native).toBeLessThanOrEqual(TOL);
    expect(fallback).toBeLessThanOrEqual(TOL);
  });

  it('golden replay: the drop-in CAME class matches as well', async () => {
    await expectDropInMatchesGolden('wasm', TOL);
  });

  it('native kernel vs fallback vs float64 reference (5 steps, ranks 0–3), in place with no new buffer', async () => {
    const rows = [];
    for (const [i, shape] of PARITY_SHAPES.entries()) rows.push(await cameParity(shape, 31 + i));
    console.log(formatParity('wasm', rows));
    rows.forEach(checkParity);
  });

  it('keeps every buffer (dataId) through the step and leaks nothing; a live view (shared buffer) forces the fallback', () => {
    const plugin = came({ lr: 0.01 });
    for (const shape of [[4, 4], [2, 4, 4], [4]]) {
      const name = `wasm-inplace/${shape.join('x')}`;
      const { p, s } = expectFillStepsInPlace(plugin, { name, shape, role: 'other' });
      expect(p.dataSync()[0]).toBeLessThan(1);
      // wasm clones are copies; a reshape shares the buffer (refCount 2), as a tape-saved input would.
      const clone = tf.reshape(p, [-1]);
      expect(tf.backend().refCount(p.dataId)).toBe(2);
      const g = tf.ones(shape);
      expect(cameWhich(p, g, s)).toBe('fallback');
      const before = Float32Array.from(clone.dataSync());
      plugin.update(p, g, s, 4);
      expect(Array.from(clone.dataSync())).toEqual(Array.from(before));
      tf.dispose([p, g, clone, ...Object.values(s)]);
    }
  });
});
