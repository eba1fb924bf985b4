import type { MasterWeightsPlugin, OptimizerPlugin, ParamInfo, ZeroStage } from '@kstar/core';
import { type Ownership, rowRange, rowStateBytes } from './ownership.ts';

export interface RankBytesInput {
  /** Every trained parameter: name, shape, role. */
  params: readonly { name: string; shape: readonly number[]; role: ParamInfo['role'] }[];
  optimizer: Pick<OptimizerPlugin, 'stateBytes'>;
  masterWeights?: Pick<MasterWeightsPlugin, 'bytesFor'> | undefined;
  stage: ZeroStage;
  ranks: number;
  rank: number;
  /** Who owns what (`ZeroShardedTraining.ownership`; the same on every rank). Unused at stage 0. */
  ownership?: ReadonlyMap<string, Ownership>;
  /** The parameters each segment reads (stage 3 gathers one segment at a time). */
  segments?: readonly (readonly string[])[];
}

export interface RankBytes {
  /** Persistent parameter bytes (replicated below stage 3; this rank's shards at stage 3). */
  params: number;
  /** Persistent optimizer-state bytes this rank keeps. */
  optimizerState: number;
  /** Stage 3: bytes of the largest segment's gathered float32 parameters (0 below stage 3). */
  gatheredSegment: number;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * ZeRO's per-rank memory with K*'s formats, from shapes and the ownership plan alone (no tensor is read): parameter
 * bytes per the master-weights format (4 B float32, 3 B split24), state bytes per the optimizer's own `stateBytes`
 * (whole owners) or per its state layout over the rank's rows (row owners).
 */
export function predictRankBytes(input: RankBytesInput): RankBytes {
  const { params, optimizer, masterWeights, stage, rank } = input;
  const paramBytesOf = (shape: readonly number[]) =>
    masterWeights ? masterWeights.bytesFor(shape) : 4 * size(shape);
  let paramsBytes = 0;
  let state = 0;
  for (const p of params) {
    const o = stage === 0 ? undefined : input.ownership?.get(p.name);
    if (stage === 0 || !o) {
      paramsBytes += paramBytesOf(p.shape);
      state += optimizer.stateBytes(p.shape, p.role);
      continue;
    }
    if (o.kind === 'whole') {
      if (o.owner === rank) state += optimizer.stateBytes(p.shape, p.role);
      if (stage < 3 || o.owner === rank) paramsBytes += paramBytesOf(p.shape);
      continue;
    }
    state += rowStateBytes(o, rank);
    const { n } = rowRange(o, rank);
    if (stage < 3) paramsBytes += paramBytesOf(p.shape);
    else if (n > 0) paramsBytes += paramBytesOf([n, ...p.shape.slice(1)]);
  }
  let gatheredSegment = 0;
  if (stage === 3) {
    const shapeOf = new Map(params.map((p) => [p.name, p.shape]));
    const segments = input.segments ?? [params.map((p) => p.name)];
    for (const seg of segments) {
      let bytes = 0;
      for (const name of new Set(seg)) bytes += 4 * size(shapeOf.get(name) ?? []);
      gatheredSegment = Math.max(gatheredSegment, bytes);
    }
  }
  return { params: paramsBytes, optimizerState: state, gatheredSegment };
}
