import { stateVariable } from '@kstar/core';
import type * as tf from '@tensorflow/tfjs-core';
import { cameGeometry } from './geometry.ts';

/**
 * CAME state of a factored parameter (rank ≥ 2, shape [...lead, m, n]), came_pytorch's names in brackets:
 * `m` [exp_avg] the parameter's shape; `vRow` [exp_avg_sq_row] and `resRow` [exp_avg_res_row] shape[:-1];
 * `vCol` [exp_avg_sq_col] and `resCol` [exp_avg_res_col] shape[:-2] ++ shape[-1:].
 */
export interface CameFactoredState {
  m: tf.Variable;
  vRow: tf.Variable;
  vCol: tf.Variable;
  resRow: tf.Variable;
  resCol: tf.Variable;
}

/** CAME state of a vector or scalar: `m` [exp_avg] and `v` [exp_avg_sq], both the parameter's shape. */
export interface CameVectorState {
  m: tf.Variable;
  v: tf.Variable;
}

export type CameState = CameFactoredState | CameVectorState;

/** State keys in checkpoint order (also the suffixes `<variable>/<key>` of the drop-in's weights). */
export const FACTORED_KEYS = ['m', 'vRow', 'vCol', 'resRow', 'resCol'] as const;
export const VECTOR_KEYS = ['m', 'v'] as const;
export type CameStateKey = (typeof FACTORED_KEYS)[number] | (typeof VECTOR_KEYS)[number];

export function isFactoredState(s: CameState): s is CameFactoredState {
  return 'vRow' in s;
}

/** The shape each state key must have for a parameter of `shape` (undefined: the key does not belong). */
export function stateShapes(shape: readonly number[]): Partial<Record<CameStateKey, number[]>> {
  const g = cameGeometry(shape);
  if (!g.factored) return { m: [...shape], v: [...shape] };
  return {
    m: [...shape],
    vRow: [...g.rowShape],
    vCol: [...g.colShape],
    resRow: [...g.rowShape],
    resCol: [...g.colShape],
  };
}

/** Zero state for parameter `paramName` of `shape`, variables named `<paramName>/<key>`. */
export function createCameState(paramName: string, shape: readonly number[]): CameState {
  const shapes = stateShapes(shape);
  const variable = (key: CameStateKey) => stateVariable(`${paramName}/${key}`, shapes[key]!);
  if (shapes.v != null) return { m: variable('m'), v: variable('v') };
  return {
    m: variable('m'),
    vRow: variable('vRow'),
    vCol: variable('vCol'),
    resRow: variable('resRow'),
    resCol: variable('resCol'),
  };
}
