import { launchInfo, type OpenedCollective, openCollective } from '@kstar/collective-mpi';
import { InputError, KstarError } from '@kstar/core';
import { agreeOnConfig } from '@kstar/train-loop';
import { type TrainConfig, TrainConfigSchema } from './config.ts';
import { rowsPerRank, stageOf } from './sharding.ts';

export interface Ranks {
  rank: number;
  size: number;
  /** The collective of a `--sharding` run; absent for a single process without sharding. */
  collective?: OpenedCollective;
  /** Finalizes MPI after the last collective operation (every rank calls it). */
  close(): Promise<void>;
}

/**
 * The ranks of a training run. Without `--sharding`: one process (started under `mpirun -np N` with N > 1, that is an
 * error: N copies would train the same model). With it: the launcher's ranks over Open MPI (or one local rank), which
 * check before step 1 that they train the same config and that the global batch splits evenly; a failed check stops
 * every rank with the same message.
 */
export async function openRanks(config: TrainConfig): Promise<Ranks> {
  const stage = stageOf(config.sharding);
  if (stage === null) {
    const launch = launchInfo();
    if (launch && launch.size > 1) {
      throw new InputError(
        `started as ${launch.size} MPI ranks without --sharding: pass --sharding zero0|zero1|zero2|zero3 (data parallelism), or start one process`,
        'E_CONFIG',
      );
    }
    return { rank: 0, size: 1, close: async () => {} };
  }
  const collective = await openCollective();
  try {
    await agreeOnConfig(collective, config, Object.keys(TrainConfigSchema.shape));
    rowsPerRank(config.batch, collective.size);
  } catch (e) {
    // Every rank saw the same all-gathered table (or the same batch), so every rank stops here: finalize together.
    if (e instanceof KstarError) await collective.close();
    throw e;
  }
  return { rank: collective.rank, size: collective.size, collective, close: () => collective.close() };
}
