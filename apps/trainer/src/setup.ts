import { restoreOptimizerState } from '@kstar/checkpoint';
import { MemoryLedger, type OptimizerPlugin, TrainingEngine } from '@kstar/core';
import { countParamsFormula, createGPT, type GPTModel } from '@kstar/gpt';
import { inPlaceGradAccumulator, sliceWriter, webgpuBufferLimit, webgpuDevice } from '@kstar/kernels';
import type { Split24Plugin } from '@kstar/master-split24';
import { hostAdamW, offloadEffective, offloadState } from '@kstar/offload';
import type { AdamWPlugin } from '@kstar/optim-adamw';
import { type ZeroPlugin, zero } from '@kstar/shard-zero';
import {
  GradAccumulation,
  type ScaledOptimizer,
  SpikeGuard,
  scaledOptimizer,
  seqAt,
} from '@kstar/train-loop';
import * as tf from '@tensorflow/tfjs';
import { type PlannedActivations, planActivations } from './activations.ts';
import { activationBackendOf, selectTrainerBackend } from './backend-select.ts';
import { optimizerFile } from './checkpoint/format.ts';
import type { LoadedCheckpoint } from './checkpoint/read.ts';
import { restoreOtherLayout, sameLayout, wholeModelFile } from './checkpoint/reshard.ts';
import { restoreShardedCheckpoint } from './checkpoint/sharded.ts';
import { restoreWeightsFile } from './checkpoint/state.ts';
import { composeRunPlugins, runFixedBytes } from './composition.ts';
import { checkStepFits, checkTensorsFit, type PlannedTensor } from './memory-check.ts';
import { type OptimizerEntry, optimizerEntry } from './optimizers.ts';
import { type AdaptivePlanner, injectedOutOfMemory, plannedActivations, plannerFor } from './plan.ts';
import { loadCalibration, saveCalibration } from './plan-calibrate.ts';
import { offloadedStateDeviceBytes, placedOptimizer, requireBudgetForStateChoices } from './plan-state.ts';
import { applyPrecision, preparePrecision } from './precision.ts';
import type { PreparedRun } from './prepare.ts';
import { segmentPlan } from './segment-plan.ts';
import { stageOf } from './sharding.ts';
import type { TrainIO } from './train.ts';

/** What `train` steps with: the backend, the plugins as composed, the model, its first plan and the engine. */
export interface RunSetup {
  backend: Awaited<ReturnType<typeof selectTrainerBackend>>['backend'];
  ledger: MemoryLedger;
  entry: OptimizerEntry;
  /** The optimizer as built by `prepareRun` (hyper-parameters such as `learningRate` are set on it). */
  base: OptimizerPlugin;
  /** The optimizer the plugins were composed with: `base`, clipped or accumulating. */
  optimizer: OptimizerPlugin;
  accum: GradAccumulation | undefined;
  clipped: ScaledOptimizer | undefined;
  masterWeights: Split24Plugin | undefined;
  sharding: ZeroPlugin | undefined;
  composition: ReturnType<typeof composeRunPlugins>['composition'];
  model: GPTModel;
  resume: LoadedCheckpoint | undefined;
  fixed: ReturnType<typeof runFixedBytes>;
  planned: PlannedActivations;
  planner: AdaptivePlanner | undefined;
  calibration: ReturnType<typeof loadCalibration>;
  /** The sequence length of `step` (`--seq-schedule`). */
  seqOf: (step: number) => number;
  guard: SpikeGuard | undefined;
  /** `--state-choices` / `--offload-state`: the optimizer whose state lives away from the device. */
  placed: ReturnType<typeof placedOptimizer> | ReturnType<typeof offloadState> | undefined;
  engine: TrainingEngine;
}

/**
 * Select the backend and check that the model fits, compose the plugins, build the model (from `--init-from` or the
 * checkpoint), make the first plan (the planner under a budget) and the engine, and restore a resumed run's state.
 * Refuses (InputError) what cannot fit before allocating it; what it built is disposed when it throws.
 */
export async function setUpRun(run: PreparedRun, io: Pick<TrainIO, 'log' | 'collective'>): Promise<RunSetup> {
  const { config, seq, dataset } = run;
  // tfjs's banner advising tfjs-node (on the first cpu tensor) is not K*'s to print: a refused run prints one line.
  tf.env().set('PROD', true);
  // Probe lines wait until the memory check has passed: a refused run prints one line only.
  const probeLines: string[] = [];
  preparePrecision(config);
  const { backend } = await selectTrainerBackend(config.backend, { log: (line) => probeLines.push(line) });
  await applyPrecision(backend, config);
  // The weights alone, before building them: a model that cannot exist is refused without allocating it.
  checkStepFits(4 * countParamsFormula(run.modelConfig), backend, {
    what: `the ${config.preset} model's float32 weights (context ${run.modelConfig.blockSize})`,
  });
  const ledger = new MemoryLedger();
  const entry = optimizerEntry(config.optimizer);
  // --grad-clip: LOMO and AdaLomo clip with their own two-pass step (built so in prepareRun); others are wrapped.
  const base = run.optimizer;
  // --grad-accum with --grad-clip: the accumulation clips the summed gradient itself (train-loop's GradAccumulation).
  const accum =
    config.gradAccum > 1
      ? new GradAccumulation(config.gradAccum, {
          accumulator: inPlaceGradAccumulator,
          maxNorm: config.gradClip,
        })
      : undefined;
  const clipped =
    config.gradClip !== undefined && !entry.trainStep && !accum
      ? scaledOptimizer(base, config.gradClip)
      : undefined;
  // Under ZeRO the accumulation wraps the sharding plugin's gradient consumer instead (see @kstar/train-loop's GradAccumulation).
  const optimizer = accum && config.sharding === 'none' ? accum.wrap(base) : (clipped ?? base);
  const stage = stageOf(config.sharding);
  const sharding = stage !== null && io.collective ? zero({ stage, collective: io.collective }) : undefined;
  const { masterWeights, composition } = composeRunPlugins(config, optimizer, sharding);
  const model: GPTModel = createGPT(run.modelConfig, { seed: config.seed });
  const resume = run.resume?.checkpoint;
  if (run.initWeights && !resume) {
    for (const [name, v] of model.variables) {
      const values = run.initWeights.get(name)!;
      tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
    }
  }
  const layout = { ranks: sharding?.collective.size ?? 1, stage: sharding?.stage ?? null };
  const sameAsSaved = resume === undefined || sameLayout(resume, layout);
  // The whole weights (model.safetensors, or a ZeRO-3 checkpoint's shards joined); a ZeRO-3 run restores its own
  // shards instead, once the engine has sharded the model.
  if (resume && layout.stage !== 3) {
    try {
      const { file, origin } = wholeModelFile(resume);
      restoreWeightsFile(file, origin, model, masterWeights);
    } catch (e) {
      masterWeights?.dispose();
      model.dispose();
      ledger.detach();
      throw e;
    }
  }
  // --grad-accum: one float32 gradient per parameter waits between micro-batches (the plans count it).
  const fixedAll = runFixedBytes(model, optimizer, masterWeights, config.gradAccum);
  // --offload-state: only the parameters being updated hold their state on the device.
  const stateOffloaded = config.offloadState && offloadEffective(backend);
  // --host-update: the state never reaches the device (on any backend).
  const fixed = config.hostUpdate
    ? { ...fixedAll, optimizerState: 0 }
    : stateOffloaded
      ? { ...fixedAll, optimizerState: offloadedStateDeviceBytes(model, optimizer) }
      : fixedAll;
  let planned: PlannedActivations;
  // --pack-documents: the packer's position first, so that the first plan is for the resumed step's bucket.
  if (resume && run.packer) run.packer.rngState = resume.trainer.samplerState;
  // The length of the packer's next batch (it does not advance).
  const seqOf = (step: number) =>
    run.packer ? run.packer.nextLength(config.batch) : run.seqSchedule ? seqAt(run.seqSchedule, step) : seq;
  let planner: AdaptivePlanner | undefined;
  const calibration = loadCalibration();
  try {
    // Before the first step: a budget that cannot be met is an InputError naming the predicted bytes.
    requireBudgetForStateChoices(run);
    if (run.memoryBudget !== undefined) {
      planner = plannerFor(run, { backend, model, optimizer, fixed, calibration, log: (l) => io.log.log(l) });
      await planner.make(
        1,
        seqOf(1),
        'start',
        run.memoryBudget === 'auto' ? `auto budget on ${backend}` : '',
      );
      saveCalibration(calibration);
      planned = plannedActivations(planner);
    } else
      planned = planActivations({
        spec: run.activations,
        config: run.modelConfig,
        batch: config.batch,
        seq,
        backend: activationBackendOf(backend),
        userMode: config.mode,
        defaultSegments:
          config.mode === 'segmented'
            ? segmentPlan(run.modelConfig.nLayer, config.blocksPerSegment)
            : undefined,
        fixed,
      });
    checkStepFits(planned.predictedPeakBytes, backend, {
      what: `a step of batch ${config.batch} × seq ${seq}${accum ? ` with ${accum.micro} accumulated micro-batches` : ''}`,
    });
    if (backend === 'webgpu') {
      checkTensorsFit(
        wholeTensors(model, config.batch, seq, planned.strategies),
        webgpuBufferLimit(webgpuDevice()),
      );
    }
  } catch (e) {
    model.dispose();
    ledger.detach();
    throw e;
  }
  for (const line of probeLines) io.log.log(line);
  const choice = planned.choice;
  const segments = choice.segments;
  const guard = config.spikeGuard === undefined ? undefined : new SpikeGuard(config.spikeGuard);
  // --state-choices: each parameter's state where the first plan put it (8-bit, host memory or the optimizer's own).
  const placement = planner?.placement();
  const placed =
    placement && placement.size > 0
      ? placedOptimizer(composition.optimizer, placement)
      : config.offloadState
        ? offloadState(composition.optimizer, {
            offload: () => true,
            ...(config.hostUpdate
              ? { update: hostAdamW(() => (composition.optimizer as AdamWPlugin).hparams) }
              : {}),
          })
        : undefined;
  const engine = new TrainingEngine(model, {
    ...(guard
      ? { skipUpdate: (loss: number, step: number) => guard.check(accum ? accum.meanLoss(loss) : loss, step) }
      : {}),
    ...(accum ? { onGradient: accum.onGradient } : {}),
    optimizer: placed ?? composition.optimizer,
    mode: choice.mode,
    ...(segments && choice.segmentsBy === 'engine' ? { segments } : {}),
    activations: planned.strategies,
    ledger,
    gradAccumulator: inPlaceGradAccumulator,
    ...(masterWeights ? { masterWeights } : {}),
    ...(sharding ? { sharding: accum ? accum.wrapSharding(sharding) : sharding } : {}),
    ...(config.updateChunkBytes
      ? { updatePartition: { chunkBytes: config.updateChunkBytes, writer: sliceWriter } }
      : {}),
    ...(planner ? planner.engineOptions() : {}),
    ...(process.env.KSTAR_INJECT_OOM ? { onSegment: injectedOutOfMemory(process.env.KSTAR_INJECT_OOM) } : {}),
    ...(resume ? { initialStep: resume.trainer.step } : {}),
  });
  if (resume) {
    const changes = [...run.resume!.changes];
    if (!sameAsSaved) changes.push(restoreOtherLayout(resume, engine, sharding, masterWeights));
    else if (sharding) restoreShardedCheckpoint(resume, sharding, engine.optimizer.name, masterWeights);
    else
      restoreOptimizerState(resume.files.get(optimizerFile(0))!, `${resume.dir}/${optimizerFile(0)}`, engine);
    dataset.rngState = resume.trainer.samplerState;
    io.log.log(
      `kstar: resumed from ${resume.dir} at step ${resume.trainer.step}` +
        (changes.length ? ` (changed: ${changes.join('; ')})` : ''),
    );
  }
  // Offloaded optimizer state leaves the device once its first copy-out lands: before step 1.
  await placed?.settled();
  return {
    backend,
    ledger,
    entry,
    base,
    optimizer,
    accum,
    clipped,
    masterWeights,
    sharding,
    composition,
    model,
    resume,
    fixed,
    planned,
    planner,
    calibration,
    seqOf,
    guard,
    placed,
    engine,
  };
}

/**
 * Tensors a step allocates whole, whatever the plan: every parameter as float32 (split24 materializes float32 copies)
 * and, unless MsT chunks it, the logits [B·T, V].
 */
export function wholeTensors(
  model: GPTModel,
  batch: number,
  seq: number,
  strategies: ReadonlyArray<{ name: string }>,
): PlannedTensor[] {
  const tensors: PlannedTensor[] = [...model.variables].map(([name, v]) => ({
    what: `parameter '${name}' [${v.shape}]`,
    bytes: 4 * v.size,
  }));
  if (!strategies.some((s) => s.name === 'mst')) {
    const V = model.config.vocabSize;
    tensors.push({ what: `the logits [B·T, V] = [${batch * seq}, ${V}]`, bytes: 4 * batch * seq * V });
  }
  return tensors;
}
