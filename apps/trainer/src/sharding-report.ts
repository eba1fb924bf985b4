import type { TrainingEngine } from '@kstar/core';
import type { GPTModel } from '@kstar/gpt';
import { predictRankBytes, type ZeroPlugin } from '@kstar/shard-zero';
import { gatherNumbers } from '@kstar/train-loop';

/** The report's data-parallel section: every rank's measured memory next to its ZeRO prediction. */
export interface ShardingReport {
  stage: number;
  ranks: number;
  /** Bytes each rank sent per step (the collective's count over the training steps, divided by the steps). */
  bytesSentPerStep: number;
  perRank: Array<{
    rank: number;
    memory: {
      paramBytes: number;
      optimizerStateBytes: number;
      gradPeakBytes: number;
      peakBytes: number;
      gatheredPeakBytes: number;
      rssBytes: number;
      predicted: { params: number; optimizerState: number; gatheredSegment: number };
    };
  }>;
}

/** Collective: every rank calls it after its last step; every rank gets the same section. */
export async function shardingReport(
  plugin: ZeroPlugin,
  engine: TrainingEngine,
  model: GPTModel,
  measured: { gradPeakBytes: number; peakBytes: number; bytesSentPerStep: number },
): Promise<ShardingReport> {
  const c = plugin.collective;
  const attached = plugin.attached!;
  const rows = await gatherNumbers(c, [
    engine.paramBytes(),
    engine.optimizerStateBytes(),
    measured.gradPeakBytes,
    measured.peakBytes,
    attached.gatheredPeakBytes(),
    process.memoryUsage().rss,
    measured.bytesSentPerStep,
  ]);
  const params = [...model.variables.keys()].map((name) => ({
    name,
    shape: model.paramInfo(name).shape,
    role: model.paramInfo(name).role,
  }));
  const segments =
    engine.mode === 'segmented'
      ? engine.segments.map((s) => s.flatMap((i) => [...model.stages[i]!.params]))
      : undefined;
  return {
    stage: plugin.stage,
    ranks: c.size,
    bytesSentPerStep: Math.max(...rows.map((r) => r[6]!)),
    perRank: rows.map((r, rank) => ({
      rank,
      memory: {
        paramBytes: r[0]!,
        optimizerStateBytes: r[1]!,
        gradPeakBytes: r[2]!,
        peakBytes: r[3]!,
        gatheredPeakBytes: r[4]!,
        rssBytes: r[5]!,
        predicted: predictRankBytes({
          params,
          optimizer: engine.optimizer,
          masterWeights: engine.masterWeights,
          stage: plugin.stage,
          ranks: c.size,
          rank,
          ownership: attached.ownership,
          ...(segments ? { segments } : {}),
        }),
      },
    })),
  };
}
