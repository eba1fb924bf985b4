import type { TrainReport } from '@kstar/trainer/internal';
import { machineInfo, writeFileAtomic } from '@kstar/trainer/internal';
import { benchFlags } from './bench-flags.ts';
import { benchRun } from './bench-run.ts';

export const BENCH_PLAN_PREDICTION_HELP = `pnpm bench plan-prediction --json FILE [--preset tiny] [--batch 2] [--seq 64] [--backend wasm]

Trains one step of each plan of a small grid pinned (boundaries keep/ckpt × ops mst×1,2,4,8 and selective, float32
state) and writes each plan's measured peak beside the planner's prediction: where the byte model is off, and by how
much, per choice.
`;

/** The grid: a GPT of 2 blocks has 3 boundaries (embed | block0 | block1 | head). */
const BOUNDARIES = [
  ['ckpt', 'ckpt', 'ckpt'],
  ['keep', 'ckpt', 'keep'],
  ['keep', 'keep', 'keep'],
];
const OPS = ['mst×1', 'mst×2', 'mst×4', 'mst×8', 'selective'];

export async function benchPlanPrediction(argv: string[], stderr: { write(s: string): boolean }) {
  const f = benchFlags(
    argv,
    ['preset', 'batch', 'seq', 'backend', 'json'],
    'plan-prediction',
    [],
    "see 'pnpm bench plan-prediction --help'",
  );
  const settings = {
    preset: (f.preset as string) ?? 'tiny',
    batch: Number(f.batch ?? 2),
    seq: Number(f.seq ?? 64),
    backend: (f.backend as string) ?? 'wasm',
    steps: 1,
    sampleTokens: 0,
    activations: 'checkpoint,mst',
    stateChoices: '8bit,offload',
    memoryBudget: 1e12, // every plan fits: the pinned plan is what runs
  };
  const rows = [];
  for (const bounds of BOUNDARIES) {
    for (const ops of OPS) {
      const pin = [...bounds, ops, 'float32', 'float32', 'float32', 'float32'];
      const report: TrainReport = (await benchRun(settings, stderr, { pinPlan: pin })).report;
      const predicted = report.memory.predicted ?? {};
      const predictedActivations = Object.entries(predicted)
        .filter(([k]) => k.startsWith('activations'))
        .reduce((s, [, v]) => s + v, 0);
      rows.push({
        plan: pin.join(' '),
        measuredPeakBytes: report.memory.peakBytes,
        predictedPeakBytes: report.memory.predictedPeakBytes,
        measuredOverPredicted: report.memory.peakBytes / report.memory.predictedPeakBytes,
        measuredActivationBytes: report.memory.activationPeakBytes,
        predictedActivationBytes: predictedActivations,
      });
    }
  }
  const result = {
    benchmark: 'plan-prediction',
    command: `pnpm bench plan-prediction ${argv.join(' ')}`,
    machine: { ...machineInfo(), note: '2-core x86-64' },
    settings,
    rows,
  };
  writeFileAtomic(f.json, `${JSON.stringify(result, null, 2)}\n`);
  const table = rows
    .map(
      (r) =>
        `${r.plan.padEnd(52)} measured ${r.measuredPeakBytes} predicted ${r.predictedPeakBytes} (${((r.measuredOverPredicted - 1) * 100).toFixed(1)}%)`,
    )
    .join('\n');
  return { file: f.json, table };
}
