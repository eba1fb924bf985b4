import { createGPT } from '@kstar/gpt';
import { PlanLog, type PlanRecord } from '@kstar/planner';
import { selectTrainerBackend } from './backend-select.ts';
import { composeRunPlugins, runFixedBytes } from './composition.ts';
import { optimizerEntry } from './optimizers.ts';
import { plannerFor } from './plan.ts';
import { loadCalibration, saveCalibration } from './plan-calibrate.ts';
import type { PreparedRun } from './prepare.ts';

/**
 * `kstar plan`: the plans a `kstar train` with the same options would start with (one per sequence length of
 * `--seq-schedule`, or per bucket of `--pack-documents --length-buckets`), without training. Calibrates (or reads the cache) on the chosen backend.
 */
export async function planRun(run: PreparedRun, log: (line: string) => void): Promise<PlanRecord[]> {
  const { config } = run;
  const { backend } = await selectTrainerBackend(config.backend, { log });
  const entry = optimizerEntry(config.optimizer);
  const optimizer = entry.create(run.lr, config.optimizerOptions);
  const { masterWeights } = composeRunPlugins(config, optimizer);
  const model = createGPT(run.modelConfig, { seed: config.seed });
  const calibration = loadCalibration();
  try {
    const fixed = runFixedBytes(model, optimizer, masterWeights, config.gradAccum);
    const planner = plannerFor(run, { backend, model, optimizer, fixed, calibration });
    // --pack-documents: every bucket's plan (any of them may come first), all at step 1.
    const buckets = run.packer?.buckets.map((seq) => ({ seq, steps: 0 }));
    const schedule = run.seqSchedule ?? buckets ?? [{ seq: run.seq, steps: config.steps }];
    let step = 1;
    for (const [i, s] of schedule.entries()) {
      const before = schedule[i - 1]?.seq;
      await planner.make(
        step,
        s.seq,
        i === 0 ? 'start' : buckets ? 'length-bucket' : 'sequence-length',
        i === 0 ? '' : buckets ? `bucket ≤ ${s.seq} (was ≤ ${before})` : `seq ${before} → ${s.seq}`,
      );
      step += s.steps;
    }
    return planner.log.plans;
  } finally {
    saveCalibration(calibration);
    model.dispose();
    masterWeights?.dispose();
  }
}

/** The plans as text: one line each, then its segments. */
export function planTable(plans: readonly PlanRecord[]): string {
  const lines: string[] = [];
  for (const p of plans) {
    lines.push(PlanLog.describe(p));
    for (const s of p.segments)
      lines.push(
        `  ${s.choice.padEnd(44)} ${String(s.predictedBytes).padStart(12)} B ${s.choice.startsWith('state ') ? 'state' : 'saved'}  ${s.predictedMs.toFixed(1).padStart(9)} ms`,
      );
  }
  return lines.join('\n');
}
