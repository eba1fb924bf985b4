// Data parallelism over any @kstar/core Collective: each rank's rows of the global batch, a check that every rank
// trains the same configuration, and every rank's numbers (for a report) gathered exactly.
import { type Batch, type Collective, InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * This rank's rows of a global batch: rows [rank·b, (rank+1)·b) of inputs and targets [B, T]. Every rank draws the
 * same global batch from the same seed, so the ranks' rows together are exactly the single-process batch.
 */
export function rankBatch(batch: Batch, rank: number, ranks: number): Batch {
  const rows = batch.inputs.shape[0]!;
  if (rows % ranks !== 0) {
    throw new InputError(
      `a global batch of ${rows} rows does not split evenly over ${ranks} ranks: use a multiple of ${ranks} rows`,
      'E_CONFIG',
    );
  }
  const b = rows / ranks;
  return {
    inputs: tf.slice(batch.inputs, rank * b, b), // [b, T]
    targets: tf.slice(batch.targets, rank * b, b), // [b, T]
  };
}

/** FNV-1a of a string, as an int32. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/**
 * Every rank must train the same configuration. Each rank hashes each field of `config` (in `fields` order) and the
 * ranks all-gather the hashes; any difference stops every rank (all see the same table) before step 1, naming the
 * first differing field and the ranks that differ from rank 0.
 */
export async function agreeOnConfig(
  collective: Pick<Collective, 'size' | 'allGather'>,
  config: Readonly<Record<string, unknown>>,
  fields: readonly string[],
): Promise<void> {
  if (collective.size === 1) return;
  const hashes = tf.tensor1d(
    fields.map((f) => fnv1a(JSON.stringify(config[f] ?? null))),
    'int32',
  );
  const all = await collective.allGather(hashes);
  const table = (await all.data()) as Int32Array;
  tf.dispose([hashes, all]);
  const F = fields.length;
  for (let f = 0; f < F; f++) {
    const differing: number[] = [];
    for (let r = 1; r < collective.size; r++) if (table[r * F + f] !== table[f]) differing.push(r);
    if (differing.length > 0) {
      throw new InputError(
        `ranks disagree on config field '${fields[f]}' (rank${differing.length > 1 ? 's' : ''} ${differing.join(', ')} differ from rank 0; this rank's value: ${JSON.stringify(config[fields[f]!] ?? null)}): start every rank with the same flags and config`,
        'E_CONFIG',
      );
    }
  }
}

/**
 * Every rank's numbers, in rank order (all-gathered). Bytes exceed float32's exact integers, so each number travels
 * as two float32 parts: ⌊x / 2²⁰⌋ and x mod 2²⁰ (exact for x < 2⁴⁴).
 */
export async function gatherNumbers(
  collective: Pick<Collective, 'size' | 'allGather'>,
  values: readonly number[],
): Promise<number[][]> {
  if (collective.size === 1) return [[...values]];
  const parts = values.flatMap((v) => [Math.floor(v / 2 ** 20), v - Math.floor(v / 2 ** 20) * 2 ** 20]);
  const mine = tf.tensor1d(parts, 'float32');
  const all = await collective.allGather(mine);
  const flat = await all.data();
  tf.dispose([mine, all]);
  const n = values.length;
  return Array.from({ length: collective.size }, (_, r) =>
    Array.from({ length: n }, (_, k) => flat[r * 2 * n + 2 * k]! * 2 ** 20 + flat[r * 2 * n + 2 * k + 1]!),
  );
}
