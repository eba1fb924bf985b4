import '@tensorflow/tfjs-backend-wasm';
import { onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { LazyAdagrad, lazyAdagrad, lazyRowStateBytes } from '../src/index.ts';
import { goldenAdagradRun } from './helpers.ts';
import { replayAdagrad, replayFallbackPlugin, replayReferencePlugin, summary } from './replay.ts';
import { runWindowed } from './window.ts';

const TOL = 1e-5;
const ROWS_SEEN = [13, 27, 32, 37, 41, 45, 45, 48, 48, 48];
onBackend('wasm'); // the tensor count is the same after the file as before it

describe('wasm backend', () => {
  it('golden replay: plugin (wasm kernel, row-lazy E), fallback, drop-in class', async () => {
    const { run } = goldenAdagradRun();
    const r = await replayReferencePlugin('wasm-plugin');
    console.log(summary('plugin, wasm kernel', r));
    expect(r.worst).toBeLessThanOrEqual(TOL);
    expect(r.untouchedViolations).toBe(0);
    expect(r.rowsAllocatedE).toEqual(ROWS_SEEN);
    expect(r.stateBytesE).toEqual(ROWS_SEEN.map((n) => lazyRowStateBytes([50, 16], n)));
    const f = await replayFallbackPlugin('wasm-fallback');
    console.log(summary('plugin, fallback ops on wasm', f));
    expect(f.worst).toBeLessThanOrEqual(TOL);
    const opt = new LazyAdagrad({ lr: run.hparams.lr, eps: run.hparams.eps });
    const c = await replayAdagrad({ kind: 'optimizer', optimizer: opt }, 'wasm-class');
    console.log(summary('LazyAdagrad class, wasm kernel', c));
    expect(c.worst).toBeLessThanOrEqual(TOL);
    opt.dispose();
  });

  it('matMul sees the in-place update (XNNPACK weight caches invalidated)', () => {
    const plugin = lazyAdagrad({ lr: 0.5, lazyRows: 'matrices' });
    const w = tf.tidy(() => tf.variable(tf.ones([4, 4]), true, 'wasm-cache/W'));
    const s = plugin.init({ name: w.name, shape: [4, 4], role: 'matrix' });
    const x = tf.ones([1, 4]);
    tf.matMul(x, w).dispose(); // builds (and caches) the packed weights
    const g = tf.fill([4, 4], 2);
    plugin.update(w, g, s, 1); // acc = 4, w = 1 − 0.5·2/2 = 0.5
    const y = tf.matMul(x, w);
    expect(Array.from(y.dataSync())).toEqual([2, 2, 2, 2]);
    tf.dispose([x, g, y, w, ...Object.values(s)]);
  });

  it('windowed mode runs on wasm and matches its cpu numbers', () => {
    const r = runWindowed(1, 4, 0.01, 3);
    console.log(
      `[optim-lazy-adagrad] wasm window K=1, 4 steps: acc err ${r.accErrInBlockMax.toExponential(3)} × block max, |Δp| ${r.paramAbsErr.toExponential(3)}`,
    );
    expect(r.stateBytes).toBe(r.predictedBytes);
    expect(r.accErrInBlockMax).toBeLessThanOrEqual((1.1 * 2 * 4) / 510);
  });
});
