export type { CheckpointOptions, CheckpointStrategy, SegmentBytesPredictor } from './checkpoint.ts';
export { checkpoint } from './checkpoint.ts';
export type { CheckpointPlan } from './plan.ts';
export { blocksPerSegment, describePlan, parsePlan, planSegments } from './plan.ts';
export { selectiveAttention } from './selective-attention.ts';
