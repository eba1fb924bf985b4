import '@tensorflow/tfjs-backend-wasm';
import { onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { goldenCheck, itChecksParityAndState } from './suite.ts';

onBackend('wasm'); // the tensor count is the same after the file as before it

describe('adam8bit on wasm', () => {
  it('golden adamw run within 2e-2 (8-bit state), float32 state ≈ exact', async () => {
    expect(tf.getBackend()).toBe('wasm');
    await goldenCheck('wasm');
  });
  itChecksParityAndState('wasm');
});
