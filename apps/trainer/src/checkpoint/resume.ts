import { CheckpointError } from './format.ts';

/**
 * Fields a resumed run may change: schedule length, learning rate, evaluation, outputs, speed/memory strategies, and
 * the ZeRO stage (with the rank count, re-partitioned on load: `reshard.ts`).
 */
const CHANGEABLE = new Set([
  'steps',
  'lr',
  'warmup',
  'evalEvery',
  'evalBatches',
  'report',
  'backend',
  'mode',
  'activations',
  'memoryBudget',
  'blocksPerSegment',
  'updateChunkBytes',
  'saveDir',
  'saveEvery',
  'keep',
  'evalOnly',
  'log',
  'sampleTokens',
  'batch',
  'gradAccum',
  'seq',
  'sharding',
]);

/**
 * The raw config of a resumed run: the checkpoint's resolved config with the explicitly given fields on top. A given
 * field that the checkpoint fixes (model shape, optimizer and its options, weights format, tokenizer, corpus, seed)
 * and that differs is a CheckpointError naming both values; allowed changes are returned as lines for the report.
 */
export function resumeConfig(
  saved: Record<string, unknown>,
  given: Record<string, unknown>,
  origin: string,
): { raw: Record<string, unknown>; changes: string[] } {
  const changes: string[] = [];
  for (const [key, value] of Object.entries(given)) {
    if (key === 'resume') continue;
    const before = saved[key];
    if (JSON.stringify(before) === JSON.stringify(value)) continue;
    if (!CHANGEABLE.has(key)) {
      throw new CheckpointError(
        `${key} = ${JSON.stringify(value)} contradicts checkpoint '${origin}' (${key} = ${JSON.stringify(before)}): drop the flag to resume, or start a new run (--init-from for its weights)`,
      );
    }
    changes.push(`${key}: ${JSON.stringify(before)} → ${JSON.stringify(value)}`);
  }
  return { raw: { ...saved, ...given }, changes };
}
