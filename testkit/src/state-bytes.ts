import { type OptimizerPlugin, type ParamInfo, uniqueBufferBytes } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { measuredUniqueBytes } from './compare.ts';

/** The role the golden fixtures give a parameter: `E` the embedding, rank 1 a vector, else a matrix. */
export function goldenRole(name: string, shape: readonly number[]): ParamInfo['role'] {
  return name === 'E' ? 'embedding' : shape.length === 1 ? 'vector' : 'matrix';
}

/**
 * For every named shape: `plugin.stateBytes(shape, role)` equals the measured unique bytes of a fresh state (by
 * data id and by core's `uniqueBufferBytes`), and still does after one update by each of `updaters` (default: the
 * plugin itself; an in-place kernel keeps its buffers, a fallback that swaps them must not grow them). Returns one
 * `name [shape] N B` row per shape for the log; `tag` tells the rows (and variable names) of several calls apart.
 */
export function expectStateBytesMeasured(
  plugin: OptimizerPlugin,
  shapes: Record<string, number[]>,
  options: { updaters?: OptimizerPlugin[]; tag?: string } = {},
): string[] {
  const { updaters = [plugin], tag = '' } = options;
  const rows: string[] = [];
  for (const [name, shape] of Object.entries(shapes)) {
    const role = goldenRole(name, shape);
    const s = plugin.init({ name: `bytes/${name}`, shape, role });
    const measured = measuredUniqueBytes(Object.values(s));
    expect(measured).toBe(plugin.stateBytes(shape, role));
    expect(uniqueBufferBytes(Object.values(s))).toBe(measured);
    updaters.forEach((updater, i) => {
      const p = tf.tidy(() => tf.variable(tf.ones(shape), true, `bytes/${name}${tag}/${i}`));
      const g = tf.onesLike(p);
      updater.update(p, g, s, 1);
      expect(measuredUniqueBytes(Object.values(s))).toBe(plugin.stateBytes(shape, role));
      tf.dispose([p, g]);
    });
    rows.push(`${name} [${shape}]${tag} ${measured} B`);
    tf.dispose(Object.values(s));
  }
  return rows;
}
