import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  flashAttention,
  flashAttentionKernel,
  flashAttentionPacked,
  flashAttentionParity,
  formatParity,
  packedAttentionKernel,
  TINY_FLASH_CASES,
} from '../src/index.ts';
import { onBackend, skipWebGPU, tensorRelErr, withoutValidationError } from './helpers.ts';

// The fused causal attention's WGSL kernels against the tfjs-ops fallback and a float64 reference, on lavapipe in CI.
const skip = skipWebGPU('the fused attention kernels were NOT parity-tested');

describe.skipIf(skip)('fused causal attention (webgpu)', () => {
  onBackend('webgpu'); // tensors held constant across the tests

  it('o, lse, dq, dk, dv match the fallback and float64 on odd shapes, hd 16 and 8, with query offsets', async () => {
    const rows = await withoutValidationError(() => flashAttentionParity(TINY_FLASH_CASES));
    console.log(formatParity(rows));
    expect(rows.length).toBe(5 * TINY_FLASH_CASES.length);
    for (const r of rows) {
      expect(r.impl, r.kernel).toBe('native');
      // float32 against float64: the same bound the fallback meets, with room for summation order.
      expect(r.relErrVsFloat64!, `${r.kernel} ${r.shape}`).toBeLessThan(5e-6);
      expect(r.pass, `${r.kernel}: ${JSON.stringify(r)}`).toBe(true);
    }
  });

  it('the differentiable op gives the fallback op’s value and gradients, and keeps no [T, T] tensor', async () => {
    const [B, H, T, hd] = [2, 2, 45, 16];
    const mk = (seed: number) => tf.randomUniform([B, H, T, hd], -1, 1, 'float32', seed);
    const [q, k, v] = [mk(1), mk(2), mk(3)];
    const w = tf.randomUniform([B, H, T, hd], -1, 1, 'float32', 4);
    const loss = (impl: 'auto' | 'fallback') => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(tf.mul(flashAttention(a, b, c, { scale: 0.25, impl }), w));
    expect(flashAttentionKernel.which({ q, k, v, scale: 0.25, queryOffset: 0 })).toBe('native');
    const before = tf.memory().numBytes;
    let peakExtra = 0;
    const native = tf.valueAndGrads(loss('auto'))([q, k, v]);
    peakExtra = tf.memory().numBytes - before;
    const ops = tf.valueAndGrads(loss('fallback'))([q, k, v]);
    expect(await tensorRelErr(native.value, ops.value)).toBeLessThan(1e-5);
    for (let i = 0; i < 3; i++)
      expect(await tensorRelErr(native.grads[i]!, ops.grads[i]!), `grad ${i}`).toBeLessThan(1e-5);
    // Live after the native call: value + 3 gradients (4 × [B, H, T, hd]); a [T, T] score tensor would add B·H·T².
    expect(peakExtra).toBeLessThan(4 * 4 * B * H * T * hd + 4 * B * H * T * T);
    tf.dispose([native.value, ...native.grads, ops.value, ...ops.grads, q, k, v, w]);
  });

  it('the packed-qkv op (no head split or merge) gives the unpacked fallback’s value and dqkv', async () => {
    const [B, T, H, hd] = [2, 45, 3, 8]; // T not a multiple of any tile
    const qkv = tf.randomUniform([B, T, 3 * H * hd], -1, 1, 'float32', 7);
    const w = tf.randomUniform([B, T, H * hd], -1, 1, 'float32', 8);
    expect(packedAttentionKernel.which({ qkv, heads: H, scale: 0.3 })).toBe('native');
    const loss = (impl: 'auto' | 'fallback') => (x: tf.Tensor) =>
      tf.sum(tf.mul(flashAttentionPacked(x, { heads: H, scale: 0.3, impl }), w));
    const native = await withoutValidationError(() => tf.valueAndGrads(loss('auto'))([qkv]));
    // The reference: the fallback unpacks to [B, H, T, hd], runs the tfjs-ops attention (scores materialised) and
    // its gradient, and packs dq, dk, dv back.
    const ops = tf.valueAndGrads(loss('fallback'))([qkv]);
    expect(await tensorRelErr(native.value, ops.value)).toBeLessThan(1e-5);
    expect(await tensorRelErr(native.grads[0]!, ops.grads[0]!)).toBeLessThan(1e-5);
    tf.dispose([native.value, ...native.grads, ops.value, ...ops.grads, qkv, w]);
  });
});
