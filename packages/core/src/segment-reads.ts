import type { StagedModel } from './model.ts';

/** Which parameters each segment reads, and by how many segments each is read. */
export interface SegmentReads {
  /** Per segment, the parameters its stages read, each once. */
  readonly segmentParams: string[][];
  /**
   * Per parameter, how many segments read it (the engine's use counts: a gradient is complete after its last
   * reader; more than one reader means partial gradients wait in between).
   */
  readonly useCount: Map<string, number>;
}

/** The reads of a segment plan over `stages`: the engine's bookkeeping and the fixed-bytes prediction both use it. */
export function segmentReads(
  stages: StagedModel['stages'],
  segments: readonly (readonly number[])[],
): SegmentReads {
  const segmentParams = segments.map((seg) => [...new Set(seg.flatMap((i) => stages[i]!.params))]);
  const useCount = new Map<string, number>();
  for (const names of segmentParams)
    for (const name of names) useCount.set(name, (useCount.get(name) ?? 0) + 1);
  return { segmentParams, useCount };
}
