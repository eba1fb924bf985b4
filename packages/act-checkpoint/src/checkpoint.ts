import {
  type ActivationStrategy,
  InputError,
  type ModelOps,
  type SegmentInfo,
  SPECIFICATION_VERSION,
  type StageSummary,
} from '@kstar/core';
import { type CheckpointPlan, planSegments } from './plan.ts';
import { selectiveAttention } from './selective-attention.ts';

/**
 * The model's activation-byte prediction for a segment plan (the plugin cannot import a model package: the trainer
 * passes the model's, e.g. `(segments, b, t, o) => gpt.predictActivationBytes({batch: b, seq: t, mode: 'segmented',
 * segments, selectiveAttention: o.selective, backend})`). `segments` is undefined for full-graph mode (selective only).
 */
export type SegmentBytesPredictor = (
  segments: number[][] | undefined,
  batch: number,
  seq: number,
  options: { selective: boolean },
) => number;

export interface CheckpointOptions {
  /** Segment plan; `selective` alone (no plan) keeps the engine's mode and segments. Default 'sqrt' unless selective. */
  plan?: CheckpointPlan | 'selective';
  /** Selective recompute of the attention core (Megatron): save q, k, v and recompute the [T, T] probabilities. */
  selective?: boolean;
  /** The model's activation-byte prediction (see `SegmentBytesPredictor`); enables `predictBytes`. */
  predictor?: SegmentBytesPredictor;
}

export interface CheckpointStrategy extends ActivationStrategy {
  readonly plan: CheckpointPlan | undefined;
  readonly selective: boolean;
  /** Predicted peak activation bytes of a step (needs `predictor`); segments from the last `planSegments` call. */
  predictPeakBytes(batch: number, seq: number, nStages?: number): number;
}

/**
 * Activation checkpointing: a segment plan (the engine keeps only each segment's input and recomputes the segment in
 * the backward pass) and/or selective recompute of the attention core.
 */
export function checkpoint(options: CheckpointOptions = {}): CheckpointStrategy {
  const selective = options.selective === true || options.plan === 'selective';
  const plan: CheckpointPlan | undefined =
    options.plan === 'selective' ? undefined : (options.plan ?? (selective ? undefined : 'sqrt'));
  if (plan !== undefined) planSegments(plan, 8); // validate names early
  let lastStages: number | undefined;
  const ops: ModelOps = selective ? { attention: selectiveAttention } : {};
  const segmentsFor = (nStages: number) => (plan === undefined ? undefined : planSegments(plan, nStages));
  const predictPeakBytes = (batch: number, seq: number, nStages = lastStages): number => {
    if (!options.predictor) {
      throw new InputError(
        "checkpoint: predictPeakBytes needs the model's byte predictor: pass checkpoint({predictor})",
      );
    }
    if (plan !== undefined && nStages === undefined) {
      throw new InputError('checkpoint: predictPeakBytes needs the number of stages before the plan is made');
    }
    return options.predictor(nStages === undefined ? undefined : segmentsFor(nStages), batch, seq, {
      selective,
    });
  };
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'activation',
    name: 'checkpoint',
    plan,
    selective,
    describe: () => ({ plan: plan ?? null, selective }),
    ...(plan !== undefined
      ? {
          planSegments: (stages: readonly StageSummary[]) => {
            lastStages = stages.length;
            return planSegments(plan, stages.length);
          },
        }
      : {}),
    ops,
    ...(options.predictor
      ? {
          predictBytes: (info: SegmentInfo) => predictPeakBytes(info.batch, info.seq),
        }
      : {}),
    predictPeakBytes,
  };
}
