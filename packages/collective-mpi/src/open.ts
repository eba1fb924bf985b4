import { BackendUnavailableError, type Collective } from '@kstar/core';
import { launchInfo } from './launcher.ts';
import { INSTALL_HINT, loadLibMpi } from './libmpi.ts';
import { localCollective } from './local-collective.ts';
import { type MpiCollectiveOptions, mpiCollective } from './mpi-collective.ts';

export type OpenedCollective = Collective & { close(): Promise<void> };

/**
 * The collective for this process: over Open MPI when an MPI launcher started it (`mpirun -np N …`), else the
 * single-process one, which loads nothing of MPI. `require: true` makes a missing launcher an error.
 */
export async function openCollective(
  options: MpiCollectiveOptions & { require?: boolean } = {},
): Promise<OpenedCollective> {
  const launch = launchInfo();
  if (!launch) {
    if (options.require) {
      throw new BackendUnavailableError(
        'mpi',
        `this process was not started by an MPI launcher (no OMPI_COMM_WORLD_RANK/SIZE in the environment): start it as mpirun -np N …; ${INSTALL_HINT}`,
      );
    }
    return localCollective();
  }
  const mpi = await loadLibMpi();
  const c = await mpiCollective(mpi, options);
  if (c.size !== launch.size || c.rank !== launch.rank) {
    throw new BackendUnavailableError(
      'mpi',
      `MPI says rank ${c.rank} of ${c.size}, the launcher (${launch.source}) said rank ${launch.rank} of ${launch.size}: start every rank with the same mpirun`,
    );
  }
  return c;
}
