import type { OptimizerPlugin } from '@kstar/core';
import { InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import type { GoldenFile } from './golden.ts';
import { replayEntry } from './optimizers.ts';

export interface ReplayOutput {
  runs: Array<{
    index: number;
    optimizer: string;
    kstarOptimizer: string;
    hparams: Record<string, unknown>;
    after: Array<{ step: number; params: Record<string, number[]> }>;
  }>;
  skipped: Array<{ index: number; optimizer: string; reason: string }>;
}

function infoRole(shape: number[], name: string): 'embedding' | 'matrix' | 'vector' | 'other' {
  if (name === 'E') return 'embedding';
  if (shape.length === 1) return 'vector';
  if (shape.length === 2) return 'matrix';
  return 'other';
}

/** Replay one run: start from `init`, feed `grads[t]` at step t+1, record the parameters at the listed steps. */
export function replayRun(
  golden: GoldenFile,
  runIndex: number,
  optimizer: OptimizerPlugin,
): ReplayOutput['runs'][number]['after'] {
  const run = golden.runs[runIndex]!;
  const names = run.params_used ?? Object.keys(golden.shapes);
  const recordAt = new Set(run.after.map((a) => a.step));
  const lastStep = Math.max(...recordAt);
  const vars = new Map<string, tf.Variable>();
  const states = new Map<string, Record<string, tf.Tensor>>();
  const out: ReplayOutput['runs'][number]['after'] = [];
  try {
    for (const name of names) {
      const shape = golden.shapes[name]!;
      vars.set(
        name,
        tf.tidy(() =>
          tf.variable(tf.tensor(golden.init[name]!, shape, 'float32'), true, `replay${runIndex}/${name}`),
        ),
      );
      states.set(name, optimizer.init({ name, shape, role: infoRole(shape, name) }));
    }
    for (let step = 1; step <= lastStep; step++) {
      const grads = golden.grads[step - 1];
      if (!grads)
        throw new InputError(
          `golden file has ${golden.grads.length} gradient steps, run ${runIndex} needs ${lastStep}`,
          'E_REPLAY',
        );
      for (const name of names) {
        const g = tf.tensor(grads[name]!, golden.shapes[name]!, 'float32');
        try {
          optimizer.update(vars.get(name)!, g, states.get(name)!, step);
        } finally {
          g.dispose();
        }
      }
      if (recordAt.has(step)) {
        const params: Record<string, number[]> = {};
        for (const name of names) params[name] = Array.from(vars.get(name)!.dataSync());
        out.push({ step, params });
      }
    }
  } finally {
    for (const s of states.values()) tf.dispose(Object.values(s));
    for (const v of vars.values()) v.dispose();
  }
  return out;
}

/** Replay every run of a golden file that K* has an optimizer for; the others are listed as skipped with the reason. */
export function replayGolden(golden: GoldenFile, log: (line: string) => void = () => {}): ReplayOutput {
  const output: ReplayOutput = { runs: [], skipped: [] };
  golden.runs.forEach((run, index) => {
    const found = replayEntry(run.optimizer);
    if (!found) {
      output.skipped.push({
        index,
        optimizer: run.optimizer,
        reason: `K* has no optimizer that replays '${run.optimizer}' yet`,
      });
      log(`run ${index} (${run.optimizer}): skipped, no K* optimizer replays it`);
      return;
    }
    const [name, entry] = found;
    // readGolden has built it once already: bad hyper-parameters are an InputError there, never a skipped run.
    const optimizer: OptimizerPlugin = entry.fromReference(run.hparams);
    const after = replayRun(golden, index, optimizer);
    output.runs.push({ index, optimizer: run.optimizer, kstarOptimizer: name, hparams: run.hparams, after });
    log(`run ${index} (${run.optimizer}): replayed ${after.length} checkpoints with ${name}`);
  });
  return output;
}

/** Per run and parameter: the worst `max|p − p_ref| / RMS(p_ref)` over the recorded steps. */
export function compareReplay(
  golden: GoldenFile,
  output: ReplayOutput,
): Array<{ index: number; param: string; relError: number }> {
  const rows: Array<{ index: number; param: string; relError: number }> = [];
  for (const run of output.runs) {
    const ref = golden.runs[run.index]!;
    const worst = new Map<string, number>();
    for (const rec of run.after) {
      const refRec = ref.after.find((a) => a.step === rec.step)!;
      for (const [name, values] of Object.entries(rec.params)) {
        const r = refRec.params[name]!;
        let rms = 0;
        for (const v of r) rms += v * v;
        rms = Math.sqrt(rms / r.length);
        let maxErr = 0;
        for (let i = 0; i < r.length; i++) maxErr = Math.max(maxErr, Math.abs(values[i]! - r[i]!));
        worst.set(name, Math.max(worst.get(name) ?? 0, maxErr / rms));
      }
    }
    for (const [param, relError] of worst) rows.push({ index: run.index, param, relError });
  }
  return rows;
}
