import type { ZeroStage } from '@kstar/core';

/** The run every configuration trains: tiny, global batch 6 (2 and 3 ranks split it evenly), 10 steps. */
export const SHARD_PARITY_RUN = { batch: 6, seq: 16, steps: 10, seed: 7 } as const;

export interface ShardParityConfig {
  name: string;
  optimizer: string;
  /** Optimizer options (`--optimizer-option`). */
  options?: Record<string, number | boolean | null>;
  split24?: boolean;
  mode: 'full' | 'segmented';
  stages: readonly ZeroStage[];
}

const ALL: readonly ZeroStage[] = [0, 1, 2, 3];

/** The optimizers (adam8bit with 24-bit weights), segmented (gradients released per segment), every stage. */
export const SHARD_PARITY_CONFIGS: readonly ShardParityConfig[] = [
  { name: 'adamw', optimizer: 'adamw', mode: 'segmented', stages: ALL },
  { name: 'adam8bit-split24', optimizer: 'adam8bit', split24: true, mode: 'segmented', stages: ALL },
  { name: 'lion', optimizer: 'lion', mode: 'segmented', stages: ALL },
  { name: 'adafactor', optimizer: 'adafactor', mode: 'segmented', stages: ALL },
  { name: 'came', optimizer: 'came', mode: 'segmented', stages: ALL },
  { name: 'lomo', optimizer: 'lomo', mode: 'segmented', stages: ALL },
  // Global-norm clipping (active on every step: tiny's gradient norm is above 0.5): the norm pass must see the global
  // batch's gradient on every rank.
  {
    name: 'lomo-clip',
    optimizer: 'lomo',
    options: { clipGradNorm: 0.5 },
    mode: 'segmented',
    stages: [0, 2, 3],
  },
  // Full-graph mode: stage 3 gathers every parameter for the step.
  { name: 'adamw-full', optimizer: 'adamw', mode: 'full', stages: [0, 3] },
];
