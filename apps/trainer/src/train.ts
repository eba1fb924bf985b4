import { closeSync, openSync, writeSync } from 'node:fs';
import { BackgroundCheckpointWriter, type CheckpointHooks } from '@kstar/checkpoint';
import type { Collective, StepResult } from '@kstar/core';
import { InputError, TrainingError } from '@kstar/core';
import { learningRateAt, type ProgressBar, rankBatch } from '@kstar/train-loop';
import * as tf from '@tensorflow/tfjs';
import { cudaMemory, resetCudaStepPeak } from './backend-select.ts';
import type { TrainerState } from './checkpoint/format.ts';
import { startCheckpoint } from './checkpoint/save.ts';
import { startShardedCheckpoint } from './checkpoint/sharded.ts';
import { plannedActivations } from './plan.ts';
import { saveCalibration } from './plan-calibrate.ts';
import type { PreparedRun } from './prepare.ts';
import type { TrainReport } from './report.ts';
import { setUpRun } from './setup.ts';
import { stepFunction } from './step.ts';
import { trainReport } from './train-report.ts';

// The trainer's entry points, where plan.ts, plan-command.ts and their tests import them.
export { fixedStepBytes as fixedBytes } from '@kstar/core';
export { type PreparedRun, prepareRun } from './prepare.ts';
export { segmentPlan } from './segment-plan.ts';
export { wholeTensors } from './setup.ts';

export interface TrainIO {
  /** Progress, validation lines and notes (stderr in the CLI). */
  log: ProgressBar;
  /**
   * Polled after each step (a `StopRequest`: Ctrl-C, SIGTERM, SIGHUP, a parent that exited): when `requested`, the
   * run stops after that step and the report says `stoppedEarly`; `describe()` names the cause in the log.
   */
  stop?: { readonly requested: boolean; describe?(): string };
  /** The ranks of a data-parallel run (`--sharding`); absent: one process. */
  collective?: Collective;
  /** Tests: watch checkpoints being written in the background. */
  checkpointHooks?: CheckpointHooks;
}

/**
 * Train per the config: set up the run (setup.ts), step it (step.ts) with the learning-rate schedule, progress and
 * validation lines, the `--log` lines, checkpoints and stop requests, then report (train-report.ts). Resolves with
 * the report (also when stopped early or when a step failed).
 */
export async function train(run: PreparedRun, io: TrainIO): Promise<TrainReport> {
  const { config, lr, seq, dataset } = run;
  // Training batches: seeded windows, or packed documents (--pack-documents: the step's length is its bucket).
  const sampler = run.packer ?? dataset;
  const setup = await setUpRun(run, io);
  const { backend, engine, model, masterWeights, sharding, planner, calibration, accum, guard } = setup;
  const { base, resume, seqOf, placed, ledger } = setup;
  const ranks = sharding?.collective.size ?? 1;
  const rank = sharding?.collective.rank ?? 0;
  let planned = setup.planned;
  const choice = planned.choice;
  const trainStep = stepFunction(setup, config.gradClip);
  const startStep = (resume?.trainer.step ?? 0) + 1;
  const pastLosses = resume?.trainer.losses ?? [];
  const checkpoints: string[] = [];
  // Seconds the loop was blocked by saves (the copy to host memory, a wait for the previous write, the last wait).
  let saveSeconds = 0;
  // The copy to host memory blocks the loop; encoding and writing run while the next steps train (under ZeRO each
  // rank writes its files and rank 0 seals the checkpoint, see checkpoint/sharded.ts).
  const checkpointWriter = new BackgroundCheckpointWriter();
  const save = async (step: number) => {
    if (!config.saveDir) return;
    const t0 = performance.now();
    const trainer: TrainerState = {
      step,
      samplerState: sampler.rngState,
      schedule: { peakLr: lr, warmup: Math.min(config.warmup, config.steps - 1), totalSteps: config.steps },
      // With a budget the planner chooses the mode: the resumed run keeps the --mode asked for, not the first plan's.
      config: {
        ...config,
        lr,
        mode: run.memoryBudget !== undefined ? run.requestedMode : choice.mode,
        resume: undefined,
      },
      model: { ...run.modelConfig },
      losses: [...pastLosses, ...losses],
    };
    const split = masterWeights ? { split: masterWeights } : {};
    // Under ZeRO every rank writes its own shard (see checkpoint/sharded.ts).
    const path = sharding
      ? await startShardedCheckpoint(
          checkpointWriter,
          config.saveDir,
          config.keep,
          { sharding, optimizerName: engine.optimizer.name, model, trainer, ...split },
          io.checkpointHooks,
        )
      : await startCheckpoint(
          checkpointWriter,
          config.saveDir,
          config.keep,
          { engine, model, trainer, ...split },
          io.checkpointHooks,
        );
    saveSeconds += (performance.now() - t0) / 1000;
    checkpoints.push(path);
  };
  io.log.log(
    `kstar: ${config.preset} (${model.paramCount.toLocaleString('en-US')} params) on ${run.corpusName} ` +
      `(${dataset.tokens.length.toLocaleString('en-US')} ${run.tokenizer.name} tokens), ${backend} backend, ${planned.choice.mode} mode, ` +
      `${config.optimizer} lr ${lr}${masterWeights ? `, ${masterWeights.name} weights` : ''}, batch ${config.batch} × seq ${seq}${accum ? ` × ${accum.micro} accumulated micro-batches` : ''}, ${config.steps} steps` +
      (planned.strategies.length
        ? `; activations ${planned.strategies.map((s) => `${s.name} ${JSON.stringify(s.describe())}`).join(', ')}`
        : '') +
      (run.memoryBudget !== undefined
        ? `; predicted peak ${planned.predictedPeakBytes.toLocaleString('en-US')} of budget ${run.memoryBudget.toLocaleString('en-US')} bytes`
        : '') +
      (sharding
        ? `; ZeRO stage ${sharding.stage} over ${ranks} ranks (${config.batch / ranks} rows each)`
        : ''),
  );

  const valBatches =
    config.evalEvery > 0 || config.evalOnly ? dataset.valBatches(config.batch, seq, config.evalBatches) : [];
  const evaluate = async (): Promise<number> => {
    let sum = 0;
    for (const b of valBatches) {
      // Data parallel: this rank's rows; the engine averages the loss over ranks.
      const mine = ranks > 1 ? rankBatch(b, rank, ranks) : b;
      sum += await engine.evaluate(mine);
      if (mine !== b) tf.dispose([mine.inputs, mine.targets]);
    }
    return sum / valBatches.length;
  };

  const losses: number[] = [];
  const stepSeconds: number[] = [];
  // Live tensors (and cuda's device bytes in use) after each step: a leak shows as a rising level.
  const stepTensors: number[] = [];
  const stepGpuBytes: number[] = [];
  // cuda: each step's own device high-water mark (reset at the step's start).
  const stepGpuPeakBytes: number[] = [];
  const valLosses: Array<{ step: number; loss: number }> = [];
  const results: StepResult[] = [];
  let trainSeconds = 0;
  let tokens = 0;
  let lastVal: number | undefined;
  let failed: TrainReport['failed'];
  const started = performance.now();
  let logFd: number | undefined;
  const sentBefore = sharding?.collective.bytesSent() ?? 0;
  try {
    if (config.evalOnly) {
      const loss = await evaluate();
      valLosses.push({ step: startStep - 1, loss });
      io.log.log(`kstar: validation loss ${loss.toFixed(4)} at step ${startStep - 1} (--eval-only)`);
    } else if (startStep > config.steps) {
      throw new InputError(
        `the checkpoint is at step ${startStep - 1} and the run has --steps ${config.steps}: pass --steps ${startStep} or more to continue`,
        'E_CONFIG',
      );
    }
    // Under ZeRO rank 0 alone writes the step log (every rank has the same loss and norm; one writer, whole lines).
    logFd = config.log && rank === 0 ? openSync(config.log, resume ? 'a' : 'w') : undefined;
    for (let step = startStep; step <= config.steps && !config.evalOnly; step++) {
      checkpointWriter.throwIfFailed(); // a background checkpoint write that failed ends the run here
      const stepLr = learningRateAt(step, config.steps, lr, Math.min(config.warmup, config.steps - 1));
      // On the plugin itself: wrappers (clipping, accumulation) read it through their prototype.
      if ('learningRate' in base) base.learningRate = stepLr;
      const stepSeq = seqOf(step);
      await planner?.beforeStep(engine, step, stepSeq);
      // --grad-accum K: K micro-batches drawn in order (the same rows as one batch of K × B).
      const micro = Array.from({ length: accum?.micro ?? 1 }, () =>
        sampler.trainBatch(config.batch, stepSeq),
      );
      // Every rank draws the same global batches (same seed) and trains on its own rows of them.
      const mine = ranks > 1 ? micro.map((b) => rankBatch(b, rank, ranks)) : micro;
      resetCudaStepPeak();
      const t0 = performance.now();
      let r: StepResult;
      try {
        r = await trainStep(step, mine);
      } catch (e) {
        // A non-finite loss, a device error or any other failure inside the step: the steps before it are kept and
        // the report says why it ended (with the stack when it is not a TrainingError: that is a bug to report).
        failed =
          e instanceof TrainingError
            ? { step: e.step, reason: e.message }
            : {
                step,
                reason: `step ${step} failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
                ...(e instanceof Error && e.stack ? { stack: e.stack } : {}),
              };
        break;
      } finally {
        tf.dispose([...mine, ...micro].flatMap((b) => [b.inputs, b.targets]));
      }
      const seconds = (performance.now() - t0) / 1000;
      stepSeconds.push(seconds);
      stepTensors.push(tf.memory().numTensors);
      const { gpuBytesInUse: inUse, stepPeakGpuBytesInUse: stepPeak } = cudaMemory();
      if (inUse !== undefined) stepGpuBytes.push(inUse);
      if (stepPeak !== undefined) stepGpuPeakBytes.push(stepPeak);
      trainSeconds += seconds;
      results.push(r);
      losses.push(r.loss);
      if (r.skipped && guard) {
        const s = guard.skipped.at(-1)!;
        io.log.log(
          `kstar: step ${step}: loss ${r.loss.toFixed(4)} is over ${guard.factor} × the recent median ${s.median.toFixed(4)}: update skipped (--spike-guard)`,
        );
      }
      tokens += config.batch * config.gradAccum * stepSeq;
      const tokensPerSecond = tokens / trainSeconds;
      if (valBatches.length > 0 && (step % config.evalEvery === 0 || step === config.steps)) {
        lastVal = await evaluate();
        valLosses.push({ step, loss: lastVal });
        io.log.update(
          {
            step,
            total: config.steps,
            loss: r.loss,
            tokensPerSecond,
            elapsedSeconds: trainSeconds,
            valLoss: lastVal,
          },
          true,
        );
      } else {
        io.log.update({
          step,
          total: config.steps,
          loss: r.loss,
          tokensPerSecond,
          elapsedSeconds: trainSeconds,
          ...(lastVal !== undefined ? { valLoss: lastVal } : {}),
        });
      }
      if (logFd !== undefined) {
        const gradNorm = (r as { gradNorm?: number | null }).gradNorm;
        const line = {
          step,
          loss: r.loss,
          lr: stepLr,
          seconds,
          ...(gradNorm != null ? { gradNorm } : {}),
          ...(valLosses.at(-1)?.step === step ? { valLoss: valLosses.at(-1)!.loss } : {}),
        };
        writeSync(logFd, `${JSON.stringify(line)}\n`);
      }
      // Let signal handlers (Ctrl-C, SIGTERM, SIGHUP, the parent watch) run between steps.
      await new Promise((resolve) => setImmediate(resolve));
      const stopping = io.stop?.requested === true && step < config.steps;
      if (step === config.steps || stopping || (config.saveEvery > 0 && step % config.saveEvery === 0))
        await save(step);
      if (stopping) {
        io.log.done();
        io.log.log(
          `kstar: stopped after step ${step} (${io.stop?.describe?.() ?? 'stop requested'}); ${config.saveDir ? `checkpoint ${checkpoints.at(-1)}, ` : ''}writing the report`,
        );
        if (valBatches.length > 0 && valLosses.at(-1)?.step !== step)
          valLosses.push({ step, loss: await evaluate() });
        break;
      }
    }
  } finally {
    if (logFd !== undefined) closeSync(logFd);
    io.log.done();
    // The end, a stop or a failure: the checkpoint being written is finished first (whole or not at all).
    const t0 = performance.now();
    await checkpointWriter.idle();
    saveSeconds += (performance.now() - t0) / 1000;
  }
  checkpointWriter.throwIfFailed();
  const wallSeconds = (performance.now() - started) / 1000;
  if (planner) {
    saveCalibration(calibration);
    planned = plannedActivations(planner); // the last plan: what the final steps ran
  }
  const report = await trainReport(run, setup, planned, {
    startStep,
    results,
    losses,
    stepSeconds,
    stepTensors,
    stepGpuBytes,
    stepGpuPeakBytes,
    valLosses,
    trainSeconds,
    wallSeconds,
    tokens,
    failed,
    checkpoints,
    saveSeconds,
    checkpointWaitSeconds: checkpointWriter.waitSeconds,
    checkpointWriteSeconds: checkpointWriter.writeSeconds,
    checkpointWrites: checkpointWriter.writes,
    sentBefore,
  });
  tf.dispose(valBatches.flatMap((b) => [b.inputs, b.targets]));
  engine.dispose();
  placed?.dispose();
  masterWeights?.dispose();
  model.dispose(); // variables adopted by a master-weights plugin are already disposed
  ledger.detach();
  return report;
}
