import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGPT } from '@kstar/gpt';
import { selectBackend } from '@kstar/kernels';
import { type PlanProblem, solveExhaustive } from '@kstar/planner';
import { describe, expect, it } from 'vitest';
import { parseTrainConfig } from '../src/config.ts';
import { runCli } from '../src/index.ts';
import { optimizerEntry } from '../src/optimizers.ts';
import { plannerFor } from '../src/plan.ts';
import { loadCalibration } from '../src/plan-calibrate.ts';
import { type PlanOption, planProblem, spaceFor, zeroCosts } from '../src/plan-space.ts';
import { fixedBytes, prepareRun } from '../src/train.ts';
import { useCalibrationFixture } from './calibration-fixture.ts';
import { planArgv, tinyFixedBytes } from './tiny-plan-setup.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-plan-mode-'));
useCalibrationFixture(dir, 'planner-calibration.json');

/** The least predicted bytes of any plan of `problem` (budget 0: the tightest plan). */
const leastBytes = (problem: PlanProblem<PlanOption>) => solveExhaustive(problem).evaluation.bytes;

describe('--mode with --memory-budget', () => {
  it('plans no cuts: a budget only a cut plan meets is refused, naming the smallest full-graph peak', async () => {
    const { config, fixed } = await tinyFixedBytes();
    const space = spaceFor({}, 'wasm');
    const problem = planProblem({
      config,
      batch: 2,
      seq: 64,
      backend: 'wasm',
      fixed,
      space,
      costs: zeroCosts(config, space),
      budget: 0,
    });
    // The reference: every boundary kept (one segment: the full graph), built from the whole space here.
    const keepOnly = {
      ...problem,
      slots: problem.slots.map((s) =>
        s.name.startsWith('boundary') ? { ...s, options: s.options.filter((o) => o.label === 'keep') } : s,
      ),
    };
    const withCuts = leastBytes(problem);
    const fullGraph = leastBytes(keepOnly);
    expect(withCuts).toBeLessThan(fullGraph);
    const budget = Math.floor((withCuts + fullGraph) / 2);
    const err: string[] = [];
    const io = { stdout: { write: () => true }, stderr: { write: (s: string) => err.push(s) > 0 } };
    const argv = planArgv('--seq', '64', '--memory-budget', String(budget));
    expect(await runCli([...argv, '--mode', 'full'], io)).toBe(2);
    expect(err.at(-1)).toContain(
      `the smallest predicted peak with activations 'any' is ${fullGraph.toLocaleString('en-US')} bytes`,
    );
    // Without --mode full the same budget is met (by cutting segments).
    expect(await runCli(argv, io)).toBe(0);
  });

  it('--mode segmented: the plan is segmented even with one segment (without it: full, the budget being loose)', async () => {
    await selectBackend('wasm');
    const modeOf = async (mode: Record<string, string>) => {
      const run = prepareRun(
        parseTrainConfig({ backend: 'wasm', batch: 2, seq: 64, memoryBudget: '1GiB', ...mode }, 'test'),
      );
      const model = createGPT(run.modelConfig, { seed: 1 });
      const optimizer = optimizerEntry('adamw').create(1e-3, {});
      const fixed = fixedBytes(model, optimizer);
      const calibration = loadCalibration();
      try {
        const planner = plannerFor(run, { backend: 'wasm', model, optimizer, fixed, calibration });
        const made = await planner.make(1, 64, 'start', '');
        return [made.plan.mode, made.plan.segments.length];
      } finally {
        model.dispose();
      }
    };
    expect(await modeOf({})).toEqual(['full', 1]);
    expect(await modeOf({ mode: 'segmented' })).toEqual(['segmented', 1]);
  });

  it("a checkpoint keeps the --mode asked for (none here), not the first plan's: a resumed run may still cut", async () => {
    const saveDir = join(dir, 'run');
    const quiet = { stdout: { write: () => true }, stderr: { write: () => true } };
    const tinier = ['--layers', '1', '--d-model', '32', '--heads', '2', '--context', '32', '--batch', '1'];
    const argv = ['train', '--backend', 'wasm', ...tinier, '--steps', '1', '--eval-every', '0'];
    expect(
      await runCli([...argv, '--memory-budget', '1GiB', '--save-dir', saveDir, '--save-every', '1'], quiet),
    ).toBe(0);
    const trainer = JSON.parse(readFileSync(join(saveDir, 'step-00000001', 'trainer.json'), 'utf8'));
    expect(trainer.step).toBe(1);
    expect(trainer.config.mode).toBeUndefined();
  });
});
