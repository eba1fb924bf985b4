import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { stateVariable, stateVariableFrom, uniqueVariableName } from '../src/index.ts';

it('state variables: free names, one reference to the buffer, copies of the given values', async () => {
  await tf.setBackend('cpu');
  const a = stateVariable('sv/m', [3]);
  const b = stateVariable('sv/m', [3]); // the name is taken: the next free one
  expect([a.name, b.name]).toEqual(['sv/m', 'sv/m_1']);
  expect(uniqueVariableName('sv/m')).toBe('sv/m_2');
  expect(a.trainable).toBe(false);
  // In-place kernels write a buffer only when nothing else holds it.
  expect(tf.backend().refCount(a.dataId)).toBe(1);
  const values = new Float32Array([1, 2, 3]);
  const c = stateVariable('sv/v', [3], { values });
  values[0] = 99; // the variable holds a copy
  expect(Array.from(await c.data())).toEqual([1, 2, 3]);
  const d = stateVariable('sv/codes', [2], { dtype: 'int32', fill: 7 });
  expect([d.dtype, Array.from(await d.data())]).toEqual(['int32', [7, 7]]);
  const e = stateVariableFrom('sv/rows', () => tf.fill([2], -1, 'int32'));
  expect([e.dtype, Array.from(await e.data())]).toEqual(['int32', [-1, -1]]);
  tf.dispose([a, b, c, d, e]);
});
