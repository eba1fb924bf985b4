import type { ZeroStage } from '@kstar/core';
import { InputError } from '@kstar/core';

export const SHARDING_NAMES = ['none', 'zero0', 'zero1', 'zero2', 'zero3'] as const;
export type ShardingName = (typeof SHARDING_NAMES)[number];

/** The ZeRO stage of a `--sharding` value, or null for `none`. */
export function stageOf(name: ShardingName | undefined): ZeroStage | null {
  if (name === undefined || name === 'none') return null;
  return Number(name.slice(4)) as ZeroStage;
}

/** `--batch` is the global batch: each of `ranks` ranks trains on batch / ranks rows (`rankBatch` of @kstar/train-loop). */
export function rowsPerRank(globalBatch: number, ranks: number): number {
  if (globalBatch % ranks !== 0) {
    const lower = Math.max(ranks, globalBatch - (globalBatch % ranks));
    throw new InputError(
      `--batch ${globalBatch} (the global batch) does not split evenly over ${ranks} ranks: pass a multiple of ${ranks}, e.g. --batch ${lower}`,
      'E_CONFIG',
    );
  }
  return globalBatch / ranks;
}
