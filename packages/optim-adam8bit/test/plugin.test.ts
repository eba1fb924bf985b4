import { callUntyped, itRefusesInheritedOptionNames, onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { ADAM8BIT_DEFAULTS, Adam8bit, adam8bit, adam8bitFromReferenceHparams } from '../src/index.ts';
import { goldenCheck, nanCheck, parityCheck, resumeCheck, stateBytesCheck } from './suite.ts';

onBackend('cpu'); // the tensor count is the same after the file as before it

describe('adam8bit on cpu', () => {
  it('golden adamw run: 8-bit state within 2e-2 of RMS after 10 steps; float32 state ≈ exact', async () => {
    await goldenCheck('cpu');
  });
  it('native kernel and fallback vs an independent float64 model of the 8-bit step', async () => {
    await parityCheck('cpu');
  });
  it('measured state bytes = stateBytes (8-bit, float32 below 4096, embeddings)', () => {
    stateBytesCheck();
    const p = adam8bit();
    expect(p.stateBytes([768, 3072])).toBe(2 * 768 * 3072 + 8 * Math.ceil((768 * 3072) / 256));
    expect(p.stateBytes([768])).toBe(8 * 768);
    expect(p.stateBytes([4096 * 256]) / (4096 * 256)).toBeCloseTo(2.03125, 10);
  });
  it('NaN/Inf gradient elements keep p and zero their state (native and fallback)', async () => {
    await nanCheck('auto');
    await nanCheck('fallback');
  });
  it('save → load → step is bit-identical (drop-in Adam8bit, getWeights/setWeights)', async () => {
    await resumeCheck('cpu-resume');
  });
  it('hparams: defaults, reference names, validation', () => {
    expect(ADAM8BIT_DEFAULTS.blockSize).toBe(256);
    const p = adam8bitFromReferenceHparams({ lr: 0.01, betas: [0.8, 0.99], weight_decay: 0.1, eps: 1e-6 });
    expect(p.hparams).toMatchObject({ lr: 0.01, beta1: 0.8, beta2: 0.99, weightDecay: 0.1, eps: 1e-6 });
    expect(() => adam8bit({ lr: -1 })).toThrow(/lr = -1/);
    expect(() => adam8bit({ blockSize: 0 })).toThrow(/blockSize = 0/);
    expect(() => callUntyped(adam8bit, { foo: 1 })).toThrow(/unknown option 'foo'/);
    expect(() => adam8bitFromReferenceHparams({ amsgrad: true })).toThrow(/amsgrad/);
    p.learningRate = 0.5;
    expect(p.hparams.lr).toBe(0.5);
    const o = new Adam8bit({ lr: 0.02, blockSize: 128 });
    const back = tf.serialization.SerializationMap.getMap().classNameMap.Adam8bit![1](
      tf.serialization.SerializationMap.getMap().classNameMap.Adam8bit![0],
      o.getConfig(),
    ) as Adam8bit;
    expect(back.hparams).toEqual(o.hparams);
  });
});

itRefusesInheritedOptionNames(adam8bit);
