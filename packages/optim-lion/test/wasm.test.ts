import '@tensorflow/tfjs-backend-wasm';
import { callUntyped, onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Lion, lion, lionFromReferenceHparams } from '../src/index.ts';
import { goldenLionRuns } from './helpers.ts';
import { checkRow, exactStepCheck, formatRows, lionParity, PARITY_SHAPES } from './parity.ts';
import { expectGolden, replayLion, summary } from './replay.ts';

const TOL = 1e-5;
onBackend('wasm');

describe('wasm backend', () => {
  it('golden replay, every Lion run, plugin (wasm kernel, in place) and drop-in class', async () => {
    expect(tf.getBackend()).toBe('wasm');
    for (const { run, index } of goldenLionRuns().runs) {
      const r = await replayLion(
        { kind: 'plugin', plugin: callUntyped(lionFromReferenceHparams, run.hparams) },
        `wasm-plugin-${index}`,
        index,
      );
      console.log(summary('plugin, wasm kernel', r));
      expectGolden(r, TOL, expect);
      const h = run.hparams;
      const opt = new Lion({ lr: h.lr, beta1: h.beta1, beta2: h.beta2, weightDecay: h.weight_decay });
      const d = await replayLion({ kind: 'optimizer', optimizer: opt }, `wasm-dropin-${index}`, index);
      console.log(summary('Lion class, wasm kernel', d));
      expectGolden(d, TOL, expect);
      opt.dispose();
    }
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
    const p = tf.tidy(() => tf.variable(tf.ones([4, 4]), true, 'wasm-inplace/W'));
    const s = plugin.init({ name: 'wasm-inplace/W', shape: [4, 4], role: 'matrix' });
    const ids = [p.dataId, s.m.dataId];
    const count = tf.memory().numTensors;
    for (let t = 1; t <= 3; t++) {
      const g = tf.fill([4, 4], 0.25 * t);
      plugin.update(p, g, s, t);
      g.dispose();
    }
    expect([p.dataId, s.m.dataId]).toEqual(ids);
    expect(tf.memory().numTensors).toBe(count);
    let expected = 1;
    for (let t = 1; t <= 3; t++) expected = expected * (1 - 0.01 * 0.1) - 0.01;
    expect(p.dataSync()[0]).toBeCloseTo(expected, 6);
    tf.dispose([p, s.m]);
  });
});
