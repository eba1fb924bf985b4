import '@tensorflow/tfjs-backend-wasm';
import { expectFillStepsInPlace, onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { lion } from '../src/index.ts';
import { checkRow, exactStepCheck, formatRows, lionParity, PARITY_SHAPES } from './parity.ts';
import { expectEveryGoldenRun } from './replay.ts';

const TOL = 1e-5;
onBackend('wasm');

describe('wasm backend', () => {
  it('golden replay, every Lion run, plugin (wasm kernel, in place) and drop-in class', async () => {
    expect(tf.getBackend()).toBe('wasm');
    await expectEveryGoldenRun('wasm', TOL);
  });

  it('native kernel vs fallback vs float64, in place (no buffer created)', async () => {
    const rows = [];
    for (const [i, shape] of PARITY_SHAPES.entries()) rows.push(await lionParity(shape, 31 + i));
    console.log(formatRows('wasm', rows));
    rows.forEach(checkRow);
  });

  it('closed forms: |Δp| = lr exactly, g = 0 & m = 0 keeps p, keras single step', async () => {
    await exactStepCheck();
  });

  it('updates in place on wasm (buffers kept) and leaks nothing', () => {
    const plugin = lion({ lr: 0.01, weightDecay: 0.1 });
    const { p, s } = expectFillStepsInPlace(plugin, {
      name: 'wasm-inplace/W',
      shape: [4, 4],
      role: 'matrix',
    });
    let expected = 1;
    for (let t = 1; t <= 3; t++) expected = expected * (1 - 0.01 * 0.1) - 0.01;
    expect(p.dataSync()[0]).toBeCloseTo(expected, 6);
    tf.dispose([p, s.m]);
  });
});
