import { onBackend, skipWebGPU, webgpuValidationError as validationError } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  canReadSync,
  dequantizeArray,
  dequantizeTensor,
  lazyAdagrad,
  lazyAdagradKernel,
  quantizeArray,
  quantizeTensor,
} from '../src/index.ts';
import { randn, rng } from './helpers.ts';
import { type replayAdagrad, replayReferencePlugin, summary } from './replay.ts';

const skip = skipWebGPU('Lazy Adagrad was NOT tested on WebGPU');

const TOL = 1e-5;

describe.skipIf(skip)('webgpu (Dawn via the webgpu package, lavapipe): tfjs-ops fallback', () => {
  onBackend('webgpu');

  it('golden replay through the fallback; row-lazy E allocates every row at once (no sync read-back)', async () => {
    expect(canReadSync()).toBe(false);
    let r: Awaited<ReturnType<typeof replayAdagrad>> | undefined;
    const err = await validationError(async () => {
      r = await replayReferencePlugin('webgpu-plugin');
    });
    expect(err).toBeNull();
    console.log(summary('plugin, webgpu (fallback; all rows allocated)', r!));
    expect(r!.worst).toBeLessThanOrEqual(TOL);
    expect(r!.untouchedViolations).toBe(0);
    expect(r!.rowsAllocatedE).toEqual(new Array(10).fill(50));
    expect(lazyAdagradKernel.nativeBackends).not.toContain('webgpu');
  });

  it('8-bit quantization through tfjs ops on webgpu: same codes as the typed-array reference', async () => {
    const rows: string[] = [];
    for (const n of [3, 257, 1027]) {
      const next = rng(n);
      const x = Float32Array.from({ length: n }, () => 10 ** (-4 * next()));
      const ref = quantizeArray(x);
      const xt = tf.tensor(x);
      const q = quantizeTensor(xt);
      const codes = (await q.codes.data()) as Int32Array;
      const absmax = (await q.absmax.data()) as Float32Array;
      expect(Array.from(absmax)).toEqual(Array.from(ref.absmax));
      const mine = dequantizeArray({ codes, absmax }, n);
      const theirs = dequantizeArray(ref, n);
      let differing = 0;
      for (let i = 0; i < n; i++) if (mine[i] !== theirs[i]) differing++;
      const back = dequantizeTensor(q, [n]);
      const bv = await back.data();
      let worst = 0;
      for (let i = 0; i < n; i++)
        worst = Math.max(worst, Math.abs(bv[i]! - theirs[i]!) / ref.absmax[Math.floor(i / 256)]!);
      rows.push(
        `n=${n}: ${differing} codes differ from the reference, decode max |Δ|/absmax ${worst.toExponential(2)}`,
      );
      expect(differing).toBeLessThanOrEqual(Math.ceil(n / 100));
      expect(worst).toBeLessThanOrEqual(1 / 510 + 1e-6);
      tf.dispose([xt, q.codes, q.absmax, back]);
    }
    console.log(`[optim-lazy-adagrad] webgpu quantize: ${rows.join('; ')}`);
  });

  it('windowed mode on webgpu (K=1, two groups): bytes and error vs exact', async () => {
    const windowed = lazyAdagrad({ lr: 0.01, window: 1, lazyRows: 'off' });
    const exact = lazyAdagrad({ lr: 0.01, lazyRows: 'off' });
    const names = ['a.w', 'b.w'];
    const shape = [20, 30];
    const mk = (tag: string) =>
      names.map((n, i) =>
        tf.tidy(() => tf.variable(tf.tensor(randn(rng(i + 1), 600), shape), true, `${tag}/${n}`)),
      );
    const pw = mk('gpu-win');
    const pe = mk('gpu-exact');
    const sw = names.map((name) => windowed.init({ name, shape, role: 'matrix' }));
    const se = names.map((name) => exact.init({ name, shape, role: 'matrix' }));
    const next = rng(9);
    for (let t = 1; t <= 4; t++) {
      for (const i of [1, 0]) {
        const g = tf.tensor(randn(next, 600), shape);
        windowed.update(pw[i]!, g, sw[i]!, t);
        exact.update(pe[i]!, g, se[i]!, t);
        g.dispose();
      }
    }
    expect(windowed.windowGroups()).toEqual(['a']);
    expect(Object.keys(sw[1]!).sort()).toEqual(['accAbsmax', 'accCodes']);
    let worst = 0;
    for (const i of [0, 1]) {
      const a = await pw[i]!.data();
      const e = await pe[i]!.data();
      for (let k = 0; k < 600; k++) worst = Math.max(worst, Math.abs(a[k]! - e[k]!));
    }
    console.log(
      `[optim-lazy-adagrad] webgpu window K=1, 4 steps: max |p − p_exact| = ${worst.toExponential(3)}`,
    );
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThanOrEqual(2 * 0.01 * 4);
    for (const s of [...sw, ...se]) tf.dispose(Object.values(s));
    tf.dispose([...pw, ...pe]);
  });
});
