import {
  InputError,
  MemoryLedger,
  type OptimizerPlugin,
  type PartitionPlan,
  partitionedUpdate,
} from '@kstar/core';
import { selectBackend, sliceWriter } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { benchFlags } from './bench-flags.ts';
import { type RowsBenchmark, writeBenchResults } from './bench-results.ts';

/**
 * Gradient partitioning, measured: the extra bytes of ONE update of a weight (beyond what is alive before it),
 * whole and in row chunks, by `tf.profile` (tensor objects: what the issue asks) and by the MemoryLedger (unique
 * buffers). The weight, its gradient and the optimizer state exist before the measured update.
 */
export interface PartitionRow {
  optimizer: string;
  impl: 'fallback' | 'auto';
  shape: number[];
  /** null: the update ran whole. */
  chunkBytes: number | null;
  chunks: number;
  rowsPerChunk: number;
  weightBytes: number;
  /** tf.profile: peak of tensor-object bytes during the update minus the bytes before it. */
  profileExtraBytes: number;
  /** MemoryLedger: peak of unique buffer bytes during the update minus the bytes before it. */
  ledgerExtraBytes: number;
  /** profileExtraBytes / chunkBytes (partitioned rows). */
  extraOverChunk: number | null;
}

export type OptimizerFactory = (impl: 'fallback' | 'auto') => OptimizerPlugin;

/** Measures one update (after a warm-up update, so lazily created state exists) of a fresh weight of `shape`. */
export async function measurePartitionedUpdate(
  make: OptimizerFactory,
  impl: 'fallback' | 'auto',
  shape: number[],
  chunkBytes: number | null,
  options: { warmUp?: boolean } = {},
): Promise<PartitionRow> {
  const plugin = make(impl);
  const name = `partition_${plugin.name}_${impl}_${chunkBytes ?? 'whole'}`;
  // Uniform values: cheap to make for 38.6M elements (the bytes, not the values, are measured).
  const p = tf.tidy(() => tf.variable(tf.randomUniform(shape, -0.02, 0.02, 'float32', 1), true, name));
  const g = tf.tidy(() => tf.randomUniform(shape, -1e-3, 1e-3, 'float32', 2));
  const state = plugin.init({ name, shape, role: 'matrix' });
  const ledger = new MemoryLedger();
  let plan: PartitionPlan | null = null;
  const run = (step: number) => {
    if (chunkBytes == null) plugin.update(p, g, state, step);
    else plan = partitionedUpdate(plugin, p, g, state, step, { chunkBytes, writer: sliceWriter });
  };
  try {
    if (options.warmUp !== false) run(1); // lazily created state exists before the measured update
    const before = tf.memory().numBytes;
    let ledgerExtra = 0;
    // One update, seen by both: tf.profile counts tensor objects, the ledger unique buffers.
    const prof = await tf.profile(() => {
      ledgerExtra = ledger.measure(() => run(2)).peakNewBytes;
    });
    const profileExtra = Math.max(0, prof.peakBytes - before);
    const n = shape.reduce((a, b) => a * b, 1);
    const p2 = plan as PartitionPlan | null;
    return {
      optimizer: plugin.name,
      impl,
      shape,
      chunkBytes,
      chunks: p2?.chunks ?? 1,
      rowsPerChunk: p2?.rowsPerChunk ?? shape[0]!,
      weightBytes: 4 * n,
      profileExtraBytes: profileExtra,
      ledgerExtraBytes: ledgerExtra,
      extraOverChunk: chunkBytes == null ? null : profileExtra / chunkBytes,
    };
  } finally {
    tf.dispose([p, g, ...Object.values(state)]);
    ledger.detach();
  }
}

export const PARTITION_HELP = `pnpm bench partition --json FILE [--shape 50257x768] [--chunk-bytes 8388608]
    [--optimizers adamw,lion,lazy-adagrad,adam8bit] [--impl fallback|auto] [--whole LIST] [--backend cpu]
Measures the extra bytes of one update of a weight, whole (for the optimizers in --whole, default adamw,lion,lazy-adagrad)
and partitioned in row chunks, by tf.profile and by the MemoryLedger.
`;

export const benchPartition: RowsBenchmark<PartitionRow> = async (argv, log) => {
  const values = benchFlags(
    argv,
    ['json', 'shape', 'chunk-bytes', 'optimizers', 'impl', 'whole', 'backend'],
    'partition',
  );
  const shape = String(values.shape ?? '50257x768')
    .split('x')
    .map(Number);
  const chunkBytes = Number(values['chunk-bytes'] ?? 8 * 2 ** 20);
  if (
    shape.some((d) => !(Number.isInteger(d) && d > 0)) ||
    !(Number.isInteger(chunkBytes) && chunkBytes > 0)
  ) {
    throw new InputError(
      `--shape ${values.shape} / --chunk-bytes ${values['chunk-bytes']}: need positive integers (e.g. 50257x768, 8388608)`,
      'E_FLAG',
    );
  }
  const impl = (values.impl ?? 'fallback') as 'fallback' | 'auto';
  const { OPTIMIZERS } = await import('@kstar/trainer/internal');
  const names = String(values.optimizers ?? 'adamw,lion,lazy-adagrad,adam8bit').split(',');
  const whole = new Set(String(values.whole ?? 'adamw,lion,lazy-adagrad').split(','));
  const { backend } = await selectBackend((values.backend ?? 'cpu') as 'cpu', { log });
  const rows: PartitionRow[] = [];
  // Written after every row, so a long run keeps what it measured.
  const save = () => writeBenchResults(values.json as string, 'partition', { backend, rows });
  for (const name of names) {
    const entry = OPTIMIZERS[name];
    if (entry == null) throw new InputError(`unknown optimizer '${name}'`, 'E_FLAG');
    const make: OptimizerFactory = (i) => entry.create(1e-3, { impl: i } as never);
    for (const cb of whole.has(name) ? [null, chunkBytes] : [chunkBytes]) {
      const row = await measurePartitionedUpdate(make, impl, shape, cb);
      log(
        `${name} ${impl} ${cb == null ? 'whole' : `chunks of ${cb} B (${row.chunks})`}: tf.profile extra ${row.profileExtraBytes} B, ledger extra ${row.ledgerExtraBytes} B`,
      );
      rows.push(row);
      save();
    }
  }
  return { rows, file: values.json };
};
