import '@tensorflow/tfjs-backend-wasm';
import { expectFillStepsInPlace, onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { came, cameWhich } from '../src/index.ts';
import { itMatchesReferences } from './backend-cases.ts';

onBackend('wasm');

describe('wasm backend', () => {
  itMatchesReferences('wasm', { seed: 31 });

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
