import { InputError, ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adamwKernel, adamwUpdate, selectBackend } from '../src/index.ts';
import { adamwParity, aliasingCheck, checkRow, formatRows, SHAPES, staleReadCheck } from './adamw-parity.ts';
import { HP } from './helpers.ts';

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`adamwUpdate on ${backend}`, () => {
    let tensorsAtStart = 0;
    beforeEach(async () => {
      await selectBackend(backend);
      tensorsAtStart = tf.memory().numTensors;
    });
    afterEach(() => {
      expect(tf.memory().numTensors).toBe(tensorsAtStart);
    });

    it('native kernel and fallback match a float64 reference over 5 steps', async () => {
      const rows = [];
      for (const [i, shape] of SHAPES.entries()) rows.push(await adamwParity(shape, 11 + i));
      console.log(formatRows(backend, rows));
      rows.forEach(checkRow);
    });

    it('values read between updates are not served stale', async () => {
      await staleReadCheck();
    });

    it('does not write through a live clone of the parameter', async () => {
      // cpu shares the buffer with the clone (refCount 2 → fallback); wasm clones copy (stays in place).
      await aliasingCheck(backend === 'wasm');
    });
  });
}

describe('adamwUpdate input checks', () => {
  it('rejects mismatched shapes, dtypes and hyper-parameters with the offending value', async () => {
    await selectBackend('cpu');
    const start = tf.memory().numTensors;
    const [p, m, v] = tf.tidy(() => [0, 1, 2].map(() => tf.variable(tf.zeros([3]))));
    const g = tf.zeros([4]);
    const gi = tf.zeros([3], 'int32');
    const g3 = tf.zeros([3]);
    expect(() => adamwUpdate(p, g, m, v, { ...HP, step: 1 })).toThrow(ShapeError);
    expect(() => adamwUpdate(p, g, m, v, { ...HP, step: 1 })).toThrow(/grad has shape \[4\].*\[3\]/);
    expect(() => adamwUpdate(p, gi, m, v, { ...HP, step: 1 })).toThrow(/grad has dtype int32/);
    expect(() => adamwUpdate(p, g3, m, v, { ...HP, step: 0 })).toThrow(InputError);
    expect(() => adamwUpdate(p, g3, m, v, { ...HP, step: 0 })).toThrow(/hp.step = 0/);
    expect(() => adamwUpdate(p, g3, m, v, { ...HP, beta2: 1, step: 1 })).toThrow(/hp.beta2 = 1/);
    expect(() => adamwUpdate(p, g3, m, v, { ...HP, step: 1 }, { impl: 'x' as 'auto' })).toThrow(/impl "x"/);
    // The same variable passed as m and v is a shared buffer: the in-place kernel declines.
    expect(adamwKernel.which({ param: p, grad: g3, m, v: m, hp: { ...HP, step: 1 } })).toBe('fallback');
    tf.dispose([p, m, v, g, gi, g3]);
    expect(tf.memory().numTensors).toBe(start);
  });
});
