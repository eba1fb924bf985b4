/**
 * What the optimizers' state-bytes scripts (bench/packages/optim-*\/state-bytes.ts) share: gpt2-124m's parameters
 * as @kstar/gpt lays them out, the measurement (create one parameter's state at a time on the cpu backend, sum its
 * unique buffers, against the plugin's `stateBytes()` prediction) and where the result goes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { type OptimizerPlugin, type OptimizerState, uniqueBufferBytes } from '@kstar/core';
import { GPT_PRESETS, type ParamSpec, paramSpecs } from '@kstar/gpt';
import * as tf from '@tensorflow/tfjs';

/** gpt2-124m's 148 parameters (name, shape, role), in the model's order. */
export const GPT2_124M: readonly ParamSpec[] = paramSpecs(GPT_PRESETS['gpt2-124m']);

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Parameter elements of `specs` (gpt2-124m: 124,439,808). */
export const paramCount = (specs: readonly ParamSpec[] = GPT2_124M): number =>
  specs.reduce((a, s) => a + numel(s.shape), 0);

/** Predicted and measured state bytes over a model, the measured split into matrices (rank ≥ 2) and vectors. */
export interface StateBytes {
  predicted: number;
  measured: number;
  matrices: number;
  vectors: number;
}

/**
 * Creates `plugin`'s state for each parameter, one at a time (disposed before the next: the peak stays one
 * parameter's state), and sums `stateBytes()` and the unique buffers measured. `each` sees every parameter's
 * numbers and state before it is disposed.
 */
export function measureStateBytes(
  plugin: OptimizerPlugin,
  specs: readonly ParamSpec[] = GPT2_124M,
  each?: (spec: ParamSpec, bytes: { predicted: number; measured: number }, state: OptimizerState) => void,
): StateBytes {
  const total: StateBytes = { predicted: 0, measured: 0, matrices: 0, vectors: 0 };
  for (const spec of specs) {
    const shape = [...spec.shape];
    const predicted = plugin.stateBytes(shape, spec.role);
    const state = plugin.init({ name: `bench/${plugin.name}/${spec.name}`, shape, role: spec.role });
    const measured = uniqueBufferBytes(Object.values(state));
    each?.(spec, { predicted, measured }, state);
    tf.dispose(Object.values(state));
    total.predicted += predicted;
    total.measured += measured;
    if (shape.length > 1) total.matrices += measured;
    else total.vectors += measured;
  }
  return total;
}

/** Writes `result` to results/state-bytes-gpt2-124m.json beside the script `scriptUrl` (its import.meta.url). */
export function writeStateBytesResult(scriptUrl: string, result: object): URL {
  const dir = new URL('./results/', scriptUrl);
  mkdirSync(dir, { recursive: true });
  const out = new URL('state-bytes-gpt2-124m.json', dir);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  return out;
}
